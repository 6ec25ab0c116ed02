-- Record a split and reserve its amount against the payment's cap, in one step: what a
-- payment's splits share (processing or succeeded, less what refunds took back: `sh`)
-- never exceeds cap_bp of the amount paid less the refunds that hold part of it
-- (`a` - `rr`), whatever the concurrency. Nothing is written unless accepted. The id is
-- derived from (payment, out_split_no), so the record is the natural key.
-- KEYS: 1 payment, 2 split, 3 the payment's split list, 4 due set
-- ARGV: 1 split id, 2 fingerprint, 3 creation JSON, 4 amount, 5 state JSON, 6 now ms,
--       7 first due ms, 8 cap in basis points
local fingerprint = redis.call('HGET', KEYS[2], 'f')
if fingerprint then
  if fingerprint ~= ARGV[2] then return {'conflict'} end
  return {'exists'}
end
local p = redis.call('HMGET', KEYS[1], 's', 'a', 'rr', 'sh')
if not p[1] then return {'missing'} end
if p[1] ~= 'succeeded' and p[1] ~= 'partially_refunded' then return {'state', p[1]} end
local base = tonumber(p[2]) - tonumber(p[3] or '0')
local cap = math.floor(base * tonumber(ARGV[8]) / 10000)
local shared = tonumber(p[4] or '0')
if shared + tonumber(ARGV[4]) > cap then
  return {'exceeds', tostring(math.max(cap - shared, 0))}
end
redis.call('HINCRBY', KEYS[1], 'sh', ARGV[4])
redis.call('HSET', KEYS[2], 'd', ARGV[3], 'a', ARGV[4], 'x', ARGV[5], 's', 'processing',
           'v', '1', 'u', ARGV[6], 'f', ARGV[2], 'ret', '0')
redis.call('RPUSH', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[7], 'sp:' .. ARGV[1])
return {'created'}
