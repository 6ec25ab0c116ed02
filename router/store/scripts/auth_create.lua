-- Record an authorization, or find the one its natural key already names. The id is
-- derived from (merchant, out_auth_no), so the record itself is the natural key.
-- KEYS: 1 authorization, 2 due set
-- ARGV: 1 authorization id, 2 fingerprint, 3 creation JSON, 4 amount, 5 rail state JSON,
--       6 now ms, 7 first due ms, 8 expiry ms
local fingerprint = redis.call('HGET', KEYS[1], 'f')
if fingerprint then
  if fingerprint ~= ARGV[2] then return {'conflict'} end
  return {'exists'}
end
redis.call('HSET', KEYS[1], 'd', ARGV[3], 'a', ARGV[4], 'x', ARGV[5], 's', 'processing',
           'v', '1', 'u', ARGV[6], 'f', ARGV[2], 'ex', ARGV[8], 'c', '0')
redis.call('ZADD', KEYS[2], ARGV[7], 'au:' .. ARGV[1])
return {'created'}
