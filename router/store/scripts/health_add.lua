-- Add one process's call counts to a rail's per-second health bucket, with its expiry,
-- in one step (a bucket without its TTL would never go away).
-- KEYS: 1 bucket.  ARGV: 1 ok, 2 failed, 3 ttl s
redis.call('HINCRBY', KEYS[1], 'ok', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'failed', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
