-- Settle a batch of delivered outbox entries of one shard: park the failed ones in the
-- retry set, then acknowledge and delete them all. One script, so a crash leaves either
-- the entries pending (redelivered after takeover) or settled, never lost.
-- KEYS: 1 outbox stream, 2 retry set, 3.. the event hash of each failed entry
-- ARGV: 1 consumer group, 2 first retry due (ms), 3 n, 4..3+n entry ids,
--       then per failed entry (in KEYS order): event id, merchant id, url, body
local n = tonumber(ARGV[3])
local ids = {}
for i = 1, n do ids[i] = ARGV[3 + i] end
local a = 4 + n
for k = 3, #KEYS do
  redis.call('HSET', KEYS[k], 'm', ARGV[a + 1], 'u', ARGV[a + 2], 'b', ARGV[a + 3],
             'n', '1', 'dead', '0')
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[a])
  a = a + 4
end
redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
redis.call('XDEL', KEYS[1], unpack(ids))
return n
