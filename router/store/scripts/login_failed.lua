-- Count one failed dashboard login of a client address; the count expires `window` after
-- the first failure, so a client is let in again once it has waited that long.
-- KEYS: 1 the address's failure counter.  ARGV: 1 window s.
-- Returns {failures so far, seconds until the count expires}.
local failures = redis.call('INCR', KEYS[1])
if failures == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return {failures, redis.call('TTL', KEYS[1])}
