-- Store the response of an idempotent request, or (empty status) drop the claim so a
-- corrected retry can use the key; only while this call still owns the claim.
-- KEYS: 1 idempotency.  ARGV: 1 owner, 2 status ('' = release), 3 body, 4 ttl s
if redis.call('HGET', KEYS[1], 'o') ~= ARGV[1] then return 0 end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'st', '1', 'c', ARGV[2], 'b', ARGV[3])
  redis.call('HDEL', KEYS[1], 'o', 'l', 'p')  -- a settled claim needs only its answer
  redis.call('EXPIRE', KEYS[1], ARGV[4])
end
return 1
