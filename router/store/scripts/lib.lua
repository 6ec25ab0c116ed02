-- Shared by every script (the store prepends it). Keep it free of side effects.

-- Milliseconds of the Redis server clock: one clock for every gateway's limits and leases.
local function server_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- An existing idempotency record decides the call: a stored answer is replayed, a live
-- claim refuses, a claim past its lease is taken over by `owner`. Returns nil when the
-- key is free (the caller claims it).
local function idem_existing(key, request_hash, owner, lease_ms, now)
  local rec = redis.call('HMGET', key, 'h', 'st', 'l', 'c', 'b', 'p')
  if not rec[1] then return nil end
  if rec[1] ~= request_hash then return {'reused'} end
  if rec[2] == '1' then return {'replay', rec[4], rec[5]} end
  if tonumber(rec[3]) > now then return {'in_use'} end
  redis.call('HSET', key, 'o', owner, 'l', now + tonumber(lease_ms))
  return {'takeover', rec[6] or ''}
end

-- GCRA over several keys, all or nothing. specs = {{key, interval_ms, burst}, ...}; an
-- interval of 0 means "no limit". Returns nil when every key admits the call (and then
-- records it), else {wait_ms, burst, index} of the tightest refusing key, writing nothing.
local function admit(specs, now)
  local new_tats = {}
  local refused = nil
  for i, spec in ipairs(specs) do
    local interval = tonumber(spec[2])
    if interval > 0 then
      local burst = tonumber(spec[3])
      local tat = tonumber(redis.call('GET', spec[1]) or '0')
      if tat < now then tat = now end
      local new_tat = tat + interval
      local wait = new_tat - interval * burst - now
      if wait > 0 then
        if refused == nil or wait > refused[1] then refused = {wait, burst, i} end
      else
        new_tats[i] = new_tat
      end
    end
  end
  if refused then return refused end
  for i, new_tat in pairs(new_tats) do
    redis.call('SET', specs[i][1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1000)
  end
  return nil
end

-- The common tail of a state change: move the sweeper entry, append the outbox event,
-- and store the idempotent response if this call still owns the claim (an empty status
-- releases the claim instead: the answer was provisional, a retry must ask again).
-- a = {due_key, due_action ('' keep, '-' remove, else score), due_member,
--      outbox_key, event_id, event_body, merchant_id, webhook_url,
--      idem_key, idem_owner, idem_status, idem_body, idem_ttl
--      [, journal_inbox_key, journal_entry [, event_owner]]}
-- The event goes to `event_owner` when it is given (a service provider, for the payments
-- it made for a sub-merchant), else to the merchant whose money moved.
-- A change that moves money passes its journal entry: it lands in the shard's journal
-- inbox in this same script, so no movement can be missing from the journal (the
-- journal worker chains it into its merchant's hash chain, router/ledger/).
local function finish(a)
  if a[15] and a[15] ~= '' then
    redis.call('XADD', a[14], '*', 'm', a[7], 'j', a[15])
  end
  if a[2] == '-' then
    redis.call('ZREM', a[1], a[3])
  elseif a[2] ~= '' then
    redis.call('ZADD', a[1], a[2], a[3])
  end
  if a[5] ~= '' then
    local owner = a[7]
    if a[16] and a[16] ~= '' then owner = a[16] end
    redis.call('XADD', a[4], '*', 'e', a[5], 'm', owner, 'u', a[8], 'b', a[6])
  end
  if a[10] ~= '' and redis.call('HGET', a[9], 'o') == a[10] then
    if a[11] == '' then
      redis.call('DEL', a[9])
      return
    end
    redis.call('HSET', a[9], 'st', '1', 'c', a[11], 'b', a[12])
    redis.call('HDEL', a[9], 'o', 'l', 'p')  -- a settled claim needs only its answer
    redis.call('EXPIRE', a[9], a[13])
  end
end
