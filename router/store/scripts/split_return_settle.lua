-- Settle one split return of a refund, once. `done`: the money is back, the split shows
-- it as returned and the journal records it. `undone` (the rail refused the return): the
-- share is returnable again and counts as shared again.
-- KEYS: 1 the refund's split returns, 2 the payment's returnable shares, 3 payment,
--       4 split, 5 journal inbox
-- ARGV: 1 share name, 2 done | undone, 3 merchant id, 4 journal entry ('' : none)
local amount = redis.call('HGET', KEYS[1], ARGV[1])
if not amount then return {'missing'} end
if redis.call('HGET', KEYS[1], 's:' .. ARGV[1]) then return {'settled'} end
redis.call('HSET', KEYS[1], 's:' .. ARGV[1], ARGV[2])
if ARGV[2] == 'done' then
  redis.call('HINCRBY', KEYS[4], 'ret', amount)
  if ARGV[4] ~= '' then redis.call('XADD', KEYS[5], '*', 'm', ARGV[3], 'j', ARGV[4]) end
else
  redis.call('HINCRBY', KEYS[2], ARGV[1], amount)
  redis.call('HINCRBY', KEYS[3], 'sh', amount)
end
return {'ok'}
