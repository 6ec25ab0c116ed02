-- Claim an idempotency key for a request other than payment creation.
-- KEYS: 1 idempotency.  ARGV: 1 request hash, 2 owner token, 3 lease ms, 4 ttl s
local srv = server_ms()
local decided = idem_existing(KEYS[1], ARGV[1], ARGV[2], ARGV[3], srv)
if decided then return decided end
redis.call('HSET', KEYS[1], 'h', ARGV[1], 'st', '0', 'o', ARGV[2], 'l', srv + tonumber(ARGV[3]))
redis.call('EXPIRE', KEYS[1], ARGV[4])
return {'claimed'}
