-- Record the outcome of one webhook retry.
-- KEYS: 1 retry set, 2 event hash, 3 the shard's dead-letter set
-- ARGV: 1 event id, 2 outcome ('delivered' | 'dead' | 'again'), 3 next due (ms),
--       4 now (ms)
if ARGV[2] == 'delivered' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('DEL', KEYS[2])
elseif ARGV[2] == 'dead' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HSET', KEYS[2], 'dead', '1')
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
else
  redis.call('HINCRBY', KEYS[2], 'n', 1)
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return {'ok'}
