-- A merchant earns points from one payer's qualifying payment: at most once per (payer,
-- day), however often the same payment (or another of that payer's that day) is seen.
-- KEYS: 1 the merchant's points account (b balance, e earned in all), 2 the day's payers
--       (payer -> payment id, '#' points earned that day), 3 the merchant's points ledger,
--       4 the shard's journal inbox (points are money: 1 point = 1 CNY by default)
-- ARGV: 1 payer digest, 2 payment id, 3 points, 4 the day's TTL s, 5 ledger entry JSON,
--       6 merchant id, 7 journal entry.
-- Returns {'earned', balance} or {'already'} (nothing written).
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then
  return {'already'}
end
redis.call('HINCRBY', KEYS[2], '#', ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('HINCRBY', KEYS[1], 'e', ARGV[3])
local balance = redis.call('HINCRBY', KEYS[1], 'b', ARGV[3])
redis.call('LPUSH', KEYS[3], ARGV[5])
redis.call('XADD', KEYS[4], '*', 'm', ARGV[6], 'j', ARGV[7])
return {'earned', balance}
