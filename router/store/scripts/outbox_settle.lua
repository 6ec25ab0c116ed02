-- Settle a batch of delivered outbox entries of one shard: park the failed ones in the
-- retry set, then acknowledge and delete them all. One script, so a crash leaves either
-- the entries pending (redelivered after takeover) or settled, never lost.
-- An entry is settled only if the entry under its id here is the event that was read:
-- during a failover a batch may have been read from another node (a restarted old
-- master that has not yet learnt it was replaced), whose entry ids can name different
-- events here; acknowledging or deleting those would lose them.
-- KEYS: 1 outbox stream, 2 retry set, 3.. the event hash of each failed entry
-- ARGV: 1 consumer group, 2 first retry due (ms), 3 n, then n pairs (entry id, event id),
--       then per failed entry (in KEYS order): event id, merchant id, url, body
local n = tonumber(ARGV[3])
local settled = {}
for i = 1, n do
  local id, eid = ARGV[2 + 2 * i], ARGV[3 + 2 * i]
  local entry = redis.call('XRANGE', KEYS[1], id, id)[1]
  if entry then
    local fields = entry[2]
    for f = 1, #fields, 2 do
      if fields[f] == 'e' then
        if fields[f + 1] == eid then settled[#settled + 1] = id end
        break
      end
    end
  end
end
local a = 4 + 2 * n
for k = 3, #KEYS do
  redis.call('HSET', KEYS[k], 'm', ARGV[a + 1], 'u', ARGV[a + 2], 'b', ARGV[a + 3],
             'n', '1', 'dead', '0')
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[a])
  a = a + 4
end
if #settled > 0 then
  redis.call('XACK', KEYS[1], ARGV[1], unpack(settled))
  redis.call('XDEL', KEYS[1], unpack(settled))
end
return #settled
