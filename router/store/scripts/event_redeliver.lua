-- Put a stored (retrying or dead-lettered) event back in line now, with fresh tries.
-- KEYS: 1 event hash, 2 retry set, 3 the shard's dead-letter set
-- ARGV: 1 event id, 2 now (ms). Returns {'missing'} when no such event is stored.
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
redis.call('HSET', KEYS[1], 'n', '0', 'dead', '0')
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return {'ok'}
