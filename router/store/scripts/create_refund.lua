-- Reserve a refund against the payment, atomically: reserved + amount never exceeds the
-- amount paid, whatever the concurrency. Nothing is written unless accepted.
-- Shared money comes back first: the merchant holds what was paid minus what was shared
-- (`sh`, profit sharing), so a refund beyond that also reserves, here, the returns it
-- needs from the split receivers' shares (KEYS[6]: "<order>:<split id>:<receiver>" ->
-- amount still returnable, taken in field order: merchants before people, newest split
-- first), written to KEYS[7] and sent before the refund (commerce/split_returns.py).
-- KEYS: 1 payment, 2 refund, 3 out_refund_no index, 4 refund list, 5 due set,
--       6 the payment's returnable shares, 7 the refund's split returns
-- ARGV: 1 refund id, 2 amount, 3 creation blob, 4 state blob, 5 now ms, 6 first due ms,
--       7 fingerprint, 8/9 the payment's campaign discount / cashback paid (optional)
-- Answers {'created', shared money taken back, what the rail refunds ('' : amount)}.
local existing = redis.call('GET', KEYS[3])
if existing then
  local sep = string.find(existing, '|', 1, true)
  local rid = string.sub(existing, 1, sep - 1)
  if string.sub(existing, sep + 1) ~= ARGV[7] then return {'conflict', rid} end
  return {'exists', rid}
end
-- floor(x * y / z), exact for x, y, z up to 2^34 (the product may pass 2^53): x is cut in
-- two, and each part's quotient fixed up after the floating division.
local function muldiv(x, y, z)
  local function quotient(n)
    local q = math.floor(n / z)
    while q * z > n do q = q - 1 end
    while (q + 1) * z <= n do q = q + 1 end
    return q
  end
  local hi, lo = math.floor(x / 100000), x % 100000
  local q1 = quotient(hi * y)
  return q1 * 100000 + quotient((hi * y - q1 * z) * 100000 + lo * y)
end

local p = redis.call('HMGET', KEYS[1], 's', 'a', 'rr', 'sh')
if not p[1] then return {'missing'} end
-- A fully refunded payment was paid: a further refund exceeds it (the check below).
if p[1] ~= 'succeeded' and p[1] ~= 'partially_refunded' and p[1] ~= 'refunded' then
  return {'state', p[1]}
end
local reserved = tonumber(p[3] or '0')
local amount = tonumber(ARGV[2])
if reserved + amount > tonumber(p[2]) then
  return {'exceeds', tostring(tonumber(p[2]) - reserved)}
end
local need = reserved + amount + tonumber(p[4] or '0') - tonumber(p[2])
local taken = {}
if need > 0 then
  local flat = redis.call('HGETALL', KEYS[6])
  local held, order = {}, {}
  for i = 1, #flat, 2 do
    held[flat[i]] = tonumber(flat[i + 1])
    order[#order + 1] = flat[i]
  end
  table.sort(order)
  local left = need
  for _, share in ipairs(order) do
    if left == 0 then break end
    local take = math.min(held[share], left)
    if take > 0 then
      taken[#taken + 1] = {share, take}
      left = left - take
    end
  end
  -- The rest is in splits still processing: it cannot be taken back yet.
  if left > 0 then return {'sharing', tostring(left)} end
  for _, t in ipairs(taken) do
    redis.call('HINCRBY', KEYS[6], t[1], -t[2])
    redis.call('HSET', KEYS[7], t[1], t[2])
  end
  redis.call('HINCRBY', KEYS[1], 'sh', -need)
end
-- Campaign rewards (ARGV 8: the discount, 9: the cashback paid): the rail refunds the
-- payer's part of the refunded total R = reserved + amount, floor(R (a - d) / a) -
-- floor(R c / a), less what refunds processing or succeeded already take from the rail
-- (`rra`): a running total, so rounding never drifts and the rail never refunds more
-- than it charged less the cashback (docs/api.md, "Campaigns").
local discount, cashback = tonumber(ARGV[8] or '0'), tonumber(ARGV[9] or '0')
local to_rail = ''
if discount > 0 or cashback > 0 then
  local paid, total = tonumber(p[2]), reserved + amount
  local owed = muldiv(total, paid - discount, paid) - muldiv(total, cashback, paid)
  local taken_before = tonumber(redis.call('HGET', KEYS[1], 'rra') or '0')
  to_rail = math.max(0, owed - taken_before)
  redis.call('HINCRBY', KEYS[1], 'rra', to_rail)
  to_rail = string.format('%d', to_rail)
end
redis.call('HINCRBY', KEYS[1], 'rr', amount)
redis.call('HSET', KEYS[2], 'd', ARGV[3], 'x', ARGV[4], 's', 'processing', 'u', ARGV[5],
           'a', ARGV[2])
if need > 0 then redis.call('HSET', KEYS[2], 'rt', tostring(need)) end
if to_rail ~= '' then redis.call('HSET', KEYS[2], 'ra', to_rail) end
redis.call('SET', KEYS[3], ARGV[1] .. '|' .. ARGV[7])
redis.call('RPUSH', KEYS[4], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[6], 'r:' .. ARGV[1])
return {'created', tostring(math.max(need, 0)), to_rail}
