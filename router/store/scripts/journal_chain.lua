-- Append a run of one merchant's inbox entries (from one source shard, in inbox order) to
-- its hash chain, exactly once and in order: the head must still be what the worker read
-- (seq, hash), and the run must be newer than the last entry chained from its source
-- shard (inbox ids only grow). A run whose first entries were chained before (a worker
-- died before dropping them from the inbox) appends nothing and says how many those are.
-- KEYS: 1 chain list, 2 head hash, 3 watermarks hash, 4 the shard's set of merchants with
--       a journal
-- ARGV: 1 expected head seq, 2 expected head hash, 3 source shard, 4 merchant id,
--       5 the head hash after the run (its last entry's), then per entry: inbox id
--       ("ms-seq"), entry JSON (with seq, prev, hash)
local head = redis.call('HMGET', KEYS[2], 'seq', 'hash')
local seq = head[1] or '0'
if seq ~= ARGV[1] or (head[2] or '') ~= ARGV[2] then return {'stale'} end

local function newer(id, than)
  local lm, ls = string.match(than, '^(%d+)-(%d+)$')
  local nm, ns = string.match(id, '^(%d+)-(%d+)$')
  lm, ls, nm, ns = tonumber(lm), tonumber(ls), tonumber(nm), tonumber(ns)
  return nm > lm or (nm == lm and ns > ls)
end

local last = redis.call('HGET', KEYS[3], ARGV[3])
if last then
  local done = 0
  for i = 6, #ARGV, 2 do
    if newer(ARGV[i], last) then break end
    done = done + 1
  end
  if done > 0 then return {'done', done} end
end

local entries = {}
for i = 7, #ARGV, 2 do entries[#entries + 1] = ARGV[i] end
redis.call('RPUSH', KEYS[1], unpack(entries))
redis.call('HSET', KEYS[2], 'seq', tostring(tonumber(seq) + #entries), 'hash', ARGV[5])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[#ARGV - 1])
redis.call('SADD', KEYS[4], ARGV[4])
return {'ok', #entries}
