-- One grab of a red packet (or the acceptance of a transfer), all in one step: the
-- packet must be open and not expired, each user grabs once, the count and the amount
-- are never exceeded, the share is drawn here (equal, or two-times-mean random with the
-- last share taking the rest), and the grab's payout is recorded with it, due at once,
-- so the payout goes out exactly once whatever crashes after this script.
-- KEYS: 1 packet, 2 grabs, 3 due set, 4 payout (derived from the grab), 5 grab limit
-- ARGV: 1 user, 2 random draw (integer >= 0), 3 payout id, 4 payout creation JSON,
--       5 limit interval, 6 limit burst, 7 payout rail state JSON, 8 packet id,
--       9 the caller's merchant id (another merchant's packet is missing to it)
local srv = server_ms()
local p = redis.call('HMGET', KEYS[1], 's', 'ex', 'ra', 'rc', 'eq', 'mn', 'n', 'to', 'm')
if not p[1] or p[9] ~= ARGV[9] then return {'missing'} end
local mine = redis.call('HGET', KEYS[2], ARGV[1])
if mine then return {'again', mine} end
if p[8] ~= '' and p[8] ~= ARGV[1] then return {'not_recipient'} end
if p[1] == 'awaiting_payment' or p[1] == 'canceled' then return {'not_open', p[1]} end
if tonumber(p[4]) == 0 then return {'empty'} end
if srv >= tonumber(p[2]) or p[1] ~= 'open' then return {'expired'} end

local refused = admit({{KEYS[5], ARGV[5], ARGV[6]}}, srv)
if refused then return {'limited', tostring(refused[1]), tostring(refused[2]), 1} end

local remaining, count = tonumber(p[3]), tonumber(p[4])
local equal, least = tonumber(p[5]), tonumber(p[6])
local share
if count == 1 then
  share = remaining
elseif equal > 0 then
  share = equal
else
  -- Two times the mean, clamped so everyone left can still get the minimum share.
  local high = math.min(math.floor(2 * remaining / count), remaining - (count - 1) * least)
  if high < least then high = least end
  share = least + tonumber(ARGV[2]) % (high - least + 1)
end
local seq = tonumber(p[7]) + 1
local grab = seq .. ':' .. share .. ':' .. srv .. ':' .. ARGV[3]
redis.call('HSET', KEYS[2], ARGV[1], grab)
redis.call('HSET', KEYS[1], 'ra', tostring(remaining - share), 'rc', tostring(count - 1),
           'n', tostring(seq))
redis.call('HSET', KEYS[4], 'd', ARGV[4], 'a', tostring(share), 'x', ARGV[7],
           's', 'processing', 'v', '1', 'u', tostring(srv), 'f', '')
redis.call('ZADD', KEYS[3], srv, 'po:' .. ARGV[3])
if count == 1 then
  -- Finished: best luck is the largest share, the earliest of equals.
  local best, best_amount, best_seq = '', -1, 0
  local all = redis.call('HGETALL', KEYS[2])
  for i = 1, #all, 2 do
    local s, a = string.match(all[i + 1], '^(%d+):(%d+):')
    s, a = tonumber(s), tonumber(a)
    if a > best_amount or (a == best_amount and s < best_seq) then
      best, best_amount, best_seq = all[i], a, s
    end
  end
  local v = tonumber(redis.call('HGET', KEYS[1], 'v')) + 1
  -- The `finished` event is rendered and sent by the packet's worker (ev marks it due).
  redis.call('HSET', KEYS[1], 's', 'finished', 'bl', best, 'u', tostring(srv),
             'v', tostring(v), 'ev', 'finished')
  redis.call('ZADD', KEYS[3], srv, 'rp:' .. ARGV[8])
end
return {'grabbed', grab}
