-- Send a packet's pending event (ev names it) exactly once, and move its worker entry.
-- KEYS: 1 packet, 2 due set, 3 outbox
-- ARGV: 1 packet id, 2 expected ev, 3 event id, 4 event body, 5 merchant id,
--       6 next due ('-': none)
if redis.call('HGET', KEYS[1], 'ev') ~= ARGV[2] then return {'stale'} end
redis.call('HSET', KEYS[1], 'ev', '')
finish({KEYS[2], ARGV[6], 'rp:' .. ARGV[1], KEYS[3], ARGV[3], ARGV[4], ARGV[5], '',
        KEYS[1], '', '', '', 0})
return {'ok'}
