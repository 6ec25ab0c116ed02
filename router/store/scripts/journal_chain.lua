-- Append one inbox entry to its merchant's hash chain, exactly once and in order: the
-- head must still be what the worker read (seq, hash), and the entry must be newer than
-- the last one chained from its source shard (inbox ids only grow).
-- KEYS: 1 chain list, 2 head hash, 3 watermarks hash, 4 the shard's set of merchants with
--       a journal
-- ARGV: 1 expected head seq, 2 expected head hash, 3 source shard, 4 inbox id ("ms-seq"),
--       5 entry JSON (with seq, prev, hash), 6 new head hash, 7 merchant id
local head = redis.call('HMGET', KEYS[2], 'seq', 'hash')
local seq = head[1] or '0'
if seq ~= ARGV[1] or (head[2] or '') ~= ARGV[2] then return {'stale'} end
local last = redis.call('HGET', KEYS[3], ARGV[3])
if last then
  local lm, ls = string.match(last, '^(%d+)-(%d+)$')
  local nm, ns = string.match(ARGV[4], '^(%d+)-(%d+)$')
  lm, ls, nm, ns = tonumber(lm), tonumber(ls), tonumber(nm), tonumber(ns)
  if nm < lm or (nm == lm and ns <= ls) then return {'done'} end
end
redis.call('RPUSH', KEYS[1], ARGV[5])
redis.call('HSET', KEYS[2], 'seq', tostring(tonumber(seq) + 1), 'hash', ARGV[6])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
redis.call('SADD', KEYS[4], ARGV[7])
return {'ok'}
