-- Record an invoice as its payment's current one, in one step: the payment must be paid,
-- the invoice must be for what is paid less refunded (`a` - `rf`, read here, so a refund
-- that succeeds meanwhile cannot slip in between), and the payment's current invoice
-- (`iv`) must still be the one the caller saw. One current invoice per payment: from the
-- API a new one replaces only a failed one (else the current one is answered); a reissue
-- replaces only the reversed one it follows, and when nothing remains paid nothing is
-- reissued. Nothing is written unless accepted.
-- KEYS: 1 payment, 2 the new invoice, 3 the current invoice seen (or the payment: none),
--       4 due set
-- ARGV: 1 invoice id, 2 the current invoice id seen ('' none), 3 fingerprint,
--       4 creation JSON, 5 amount, 6 tax, 7 state JSON, 8 now ms, 9 first due ms,
--       10 'api' | 'reissue'
local p = redis.call('HMGET', KEYS[1], 's', 'a', 'rf', 'iv')
if not p[1] then return {'missing'} end
local current = p[4] or ''
if current ~= ARGV[2] then return {'changed'} end
local remaining = tonumber(p[2]) - tonumber(p[3] or '0')
local paid = p[1] == 'succeeded' or p[1] == 'partially_refunded'
if ARGV[10] == 'reissue' then
  if current == '' or redis.call('HGET', KEYS[3], 's') ~= 'reversed' then
    return {'changed'}
  end
  if not paid or remaining <= 0 then
    redis.call('ZREM', KEYS[4], 'iv:' .. current)
    return {'none'}
  end
else
  if not paid then return {'state', p[1]} end
  if current ~= '' then
    local seen = redis.call('HMGET', KEYS[3], 's', 'f')
    if seen[1] ~= 'failed' then return {'current', current, seen[2] or ''} end
  end
end
if tonumber(ARGV[5]) ~= remaining then return {'amount', tostring(remaining)} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'changed'} end
redis.call('HSET', KEYS[2], 'd', ARGV[4], 'f', ARGV[3], 'a', ARGV[5], 't', ARGV[6],
           's', 'issuing', 'v', '1', 'u', ARGV[8], 'x', ARGV[7])
redis.call('HSET', KEYS[1], 'iv', ARGV[1])
if current ~= '' then redis.call('ZREM', KEYS[4], 'iv:' .. current) end
redis.call('ZADD', KEYS[4], ARGV[9], 'iv:' .. ARGV[1])
return {'created'}
