-- Record a red packet (or a transfer: one share, one recipient) awaiting its funding
-- payment, or find the one its natural key already names (the id is derived from it).
-- KEYS: 1 packet, 2 due set
-- ARGV: 1 packet id, 2 fingerprint, 3 creation JSON, 4 amount, 5 count, 6 equal share
--       (0: random split), 7 min share, 8 expires ms, 9 now ms, 10 first due ms,
--       11 the one recipient ('' : anyone), 12 merchant id
local fingerprint = redis.call('HGET', KEYS[1], 'f')
if fingerprint then
  if fingerprint ~= ARGV[2] then return {'conflict'} end
  return {'exists'}
end
redis.call('HSET', KEYS[1], 'd', ARGV[3], 'f', ARGV[2], 's', 'awaiting_payment', 'v', '1',
           'u', ARGV[9], 'ra', ARGV[4], 'rc', ARGV[5], 'eq', ARGV[6], 'mn', ARGV[7],
           'ex', ARGV[8], 'n', '0', 'to', ARGV[11], 'rf', '0', 'ev', '', 'xd', '0', 'm', ARGV[12])
redis.call('ZADD', KEYS[2], ARGV[10], 'rp:' .. ARGV[1])
return {'created'}
