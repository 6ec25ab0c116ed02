-- Claim an idempotency key for a request other than payment creation.
-- KEYS: 1 idempotency.  ARGV: 1 request hash, 2 owner token, 3 lease ms, 4 ttl s
local srv = server_ms()
local rec = redis.call('HMGET', KEYS[1], 'h', 'st', 'l', 'c', 'b', 'p')
if rec[1] then
  if rec[1] ~= ARGV[1] then return {'reused'} end
  if rec[2] == '1' then return {'replay', rec[4], rec[5]} end
  if tonumber(rec[3]) > srv then return {'in_use'} end
  redis.call('HSET', KEYS[1], 'o', ARGV[2], 'l', srv + tonumber(ARGV[3]))
  return {'takeover', rec[6] or ''}
end
redis.call('HSET', KEYS[1], 'h', ARGV[1], 'st', '0', 'o', ARGV[2], 'l', srv + tonumber(ARGV[3]))
redis.call('EXPIRE', KEYS[1], ARGV[4])
return {'claimed'}
