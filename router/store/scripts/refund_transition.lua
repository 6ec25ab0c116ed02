-- Compare-and-set a refund on its expected status. Success adds to the payment's refunded
-- sum (and moves it to partially_refunded / refunded); failure frees the reservation.
-- KEYS: 1 refund, 2 payment, 3 due set, 4 outbox, 5 idempotency (or any key of the slot),
--       6 journal inbox
-- ARGV: 1 expected status, 2 new status, 3 state blob, 4 now ms, 5 due action,
--       6 due member, 7 event id, 8 event body, 9 merchant id, 10 webhook url,
--       11 idem owner, 12 idem status, 13 idem body, 14 idem ttl, 15 journal entry,
--       16 event owner ('' or absent: the merchant), 17 when the payment's current
--       invoice is looked at, if it has one (ms)
-- Answers {'ok'}, or {'ok', invoice id} when a success leaves an invoice that no longer
-- fits what is paid: it is made due here (router/commerce/invoice_worker.py).
local s = redis.call('HGET', KEYS[1], 's')
if not s then return {'missing'} end
if s ~= ARGV[1] then return {'conflict', s} end
local amount = tonumber(redis.call('HGET', KEYS[1], 'a'))
local invoice = false
redis.call('HSET', KEYS[1], 's', ARGV[2], 'x', ARGV[3], 'u', ARGV[4])
if ARGV[2] == 'succeeded' then
  local refunded = redis.call('HINCRBY', KEYS[2], 'rf', amount)
  local paid = tonumber(redis.call('HGET', KEYS[2], 'a'))
  local status = 'partially_refunded'
  if refunded >= paid then status = 'refunded' end
  redis.call('HSET', KEYS[2], 's', status, 'u', ARGV[4])
  redis.call('HINCRBY', KEYS[2], 'v', 1)
  invoice = redis.call('HGET', KEYS[2], 'iv')
  if invoice then redis.call('ZADD', KEYS[3], 'LT', ARGV[17], 'iv:' .. invoice) end
elseif ARGV[2] == 'failed' then
  redis.call('HINCRBY', KEYS[2], 'rr', -amount)
  local to_rail = redis.call('HGET', KEYS[1], 'ra')  -- a campaign's payment: the rail's part
  if to_rail then redis.call('HINCRBY', KEYS[2], 'rra', -tonumber(to_rail)) end
end
finish({KEYS[3], ARGV[5], ARGV[6], KEYS[4], ARGV[7], ARGV[8], ARGV[9], ARGV[10],
        KEYS[5], ARGV[11], ARGV[12], ARGV[13], ARGV[14], KEYS[6], ARGV[15], ARGV[16]})
if invoice then return {'ok', invoice} end
return {'ok'}
