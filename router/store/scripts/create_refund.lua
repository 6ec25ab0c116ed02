-- Reserve a refund against the payment, atomically: reserved + amount never exceeds the
-- amount paid, whatever the concurrency. Nothing is written unless accepted.
-- KEYS: 1 payment, 2 refund, 3 out_refund_no index, 4 refund list, 5 due set
-- ARGV: 1 refund id, 2 amount, 3 creation blob, 4 state blob, 5 now ms, 6 first due ms,
--       7 fingerprint
local existing = redis.call('GET', KEYS[3])
if existing then
  local sep = string.find(existing, '|', 1, true)
  local rid = string.sub(existing, 1, sep - 1)
  if string.sub(existing, sep + 1) ~= ARGV[7] then return {'conflict', rid} end
  return {'exists', rid}
end
local p = redis.call('HMGET', KEYS[1], 's', 'a', 'rr')
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
redis.call('HINCRBY', KEYS[1], 'rr', amount)
redis.call('HSET', KEYS[2], 'd', ARGV[3], 'x', ARGV[4], 's', 'processing', 'u', ARGV[5],
           'a', ARGV[2])
redis.call('SET', KEYS[3], ARGV[1] .. '|' .. ARGV[7])
redis.call('RPUSH', KEYS[4], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[6], 'r:' .. ARGV[1])
return {'created'}
