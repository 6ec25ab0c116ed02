-- Redeem a merchant's points: the balance is checked and lowered in this one script, so
-- concurrent redemptions can never take it below zero.
-- KEYS: 1 the merchant's points account (b balance, r redeemed in all), 2 its ledger,
--       3 the redemption's record (d JSON, b balance after): a retry of a redemption whose
--       answer was lost (same derived id) finds it instead of redeeming twice; 4 the
--       shard's journal inbox
-- ARGV: 1 points, 2 ledger entry JSON, 3 the redemption's JSON, 4 the record's TTL s,
--       5 merchant id, 6 journal entry.
-- Returns {'redeemed', balance}, {'exists', JSON, balance after} or
-- {'insufficient', balance} (nothing written).
local done = redis.call('HMGET', KEYS[3], 'd', 'b')
if done[1] then return {'exists', done[1], done[2]} end
local points = tonumber(ARGV[1])
local balance = tonumber(redis.call('HGET', KEYS[1], 'b') or '0')
if balance < points then return {'insufficient', tostring(balance)} end
balance = redis.call('HINCRBY', KEYS[1], 'b', -points)
redis.call('HINCRBY', KEYS[1], 'r', points)
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[3], 'd', ARGV[3], 'b', balance)
redis.call('EXPIRE', KEYS[3], ARGV[4])
redis.call('XADD', KEYS[4], '*', 'm', ARGV[5], 'j', ARGV[6])
return {'redeemed', balance}
