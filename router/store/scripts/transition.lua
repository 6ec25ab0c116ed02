-- Compare-and-set a payment on its expected version and status, then finish().
-- (Payouts change through this script too: their hashes have the same fields.)
-- KEYS: 1 payment, 2 due set, 3 outbox, 4 idempotency (or any key of the slot),
--       5 journal inbox
-- ARGV: 1 expected version, 2 expected status, 3 new status, 4 rail-state blob, 5 now ms,
--       6 due action, 7 due member, 8 event id, 9 event body, 10 merchant id,
--       11 webhook url, 12 idem owner, 13 idem status, 14 idem body, 15 idem ttl,
--       16 journal entry ('' : this change moves no money), 17 event owner ('' or absent:
--       the merchant)
local cur = redis.call('HMGET', KEYS[1], 'v', 's')
if not cur[1] then return {'missing'} end
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then return {'conflict', cur[1], cur[2]} end
local version = tonumber(cur[1]) + 1
redis.call('HSET', KEYS[1], 's', ARGV[3], 'x', ARGV[4], 'u', ARGV[5], 'v', tostring(version))
finish({KEYS[2], ARGV[6], ARGV[7], KEYS[3], ARGV[8], ARGV[9], ARGV[10], ARGV[11],
        KEYS[4], ARGV[12], ARGV[13], ARGV[14], ARGV[15], KEYS[5], ARGV[16], ARGV[17]})
return {'ok', version}
