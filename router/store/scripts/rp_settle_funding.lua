-- The funding payment's outcome: a packet awaiting it opens (paid) or is canceled (the
-- payment failed or was closed). Exactly once: only from awaiting_payment.
-- KEYS: 1 packet, 2 due set, 3 outbox
-- ARGV: 1 packet id, 2 new status, 3 now ms, 4 next due ms ('-': none), 5 event id,
--       6 event body, 7 merchant id
local cur = redis.call('HMGET', KEYS[1], 's', 'v')
if not cur[1] then return {'missing'} end
if cur[1] ~= 'awaiting_payment' then return {'state', cur[1]} end
redis.call('HSET', KEYS[1], 's', ARGV[2], 'u', ARGV[3], 'v', tostring(tonumber(cur[2]) + 1))
finish({KEYS[2], ARGV[4], 'rp:' .. ARGV[1], KEYS[3], ARGV[5], ARGV[6], ARGV[7], '',
        KEYS[1], '', '', '', 0})
return {'ok'}
