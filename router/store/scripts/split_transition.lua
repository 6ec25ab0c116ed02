-- Compare-and-set a split on its expected version and status, then finish(). A split
-- that succeeds makes its receivers' shares returnable to a later refund (KEYS[5]) and
-- is the sum of them: a receiver the rail closed is not among them, and its amount goes
-- back to the payment's cap (`sh`), as all of a failed split's does.
-- KEYS: 1 split, 2 payment, 3 due set, 4 outbox, 5 returnable shares, 6 journal inbox
-- ARGV: 1 expected version, 2 expected status, 3 new status, 4 state JSON, 5 now ms,
--       6 due action, 7 due member, 8 event id, 9 event body, 10 merchant id,
--       11 webhook url, 12 idem owner, 13 idem status, 14 idem body, 15 idem ttl,
--       16 journal entry, 17 event owner, 18... share name, amount, ...
local cur = redis.call('HMGET', KEYS[1], 'v', 's', 'a')
if not cur[1] then return {'missing'} end
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then return {'conflict'} end
redis.call('HSET', KEYS[1], 's', ARGV[3], 'x', ARGV[4], 'u', ARGV[5],
           'v', tostring(tonumber(cur[1]) + 1))
if ARGV[3] == 'succeeded' then
  local shared = 0
  for i = 18, #ARGV, 2 do
    redis.call('HSET', KEYS[5], ARGV[i], ARGV[i + 1])
    shared = shared + tonumber(ARGV[i + 1])
  end
  if shared < tonumber(cur[3]) then
    redis.call('HSET', KEYS[1], 'a', tostring(shared))
    redis.call('HINCRBY', KEYS[2], 'sh', shared - tonumber(cur[3]))
  end
elseif ARGV[3] == 'failed' then
  redis.call('HINCRBY', KEYS[2], 'sh', -tonumber(cur[3]))
end
finish({KEYS[3], ARGV[6], ARGV[7], KEYS[4], ARGV[8], ARGV[9], ARGV[10], ARGV[11],
        KEYS[1], ARGV[12], ARGV[13], ARGV[14], ARGV[15], KEYS[6], ARGV[16], ARGV[17]})
return {'ok'}
