-- Compare-and-set an invoice on its expected version and status, then finish(). An
-- invoice issued for other than what its payment still has paid (a refund succeeded
-- meanwhile, see refund_transition.lua) keeps a due entry for now, whatever the caller
-- asked, so its worker reverses it: no refund can slip between a look and this change.
-- KEYS: 1 invoice, 2 payment, 3 due set, 4 outbox, 5 journal inbox
-- ARGV: 1 expected version, 2 expected status, 3 new status, 4 state JSON, 5 now ms,
--       6 due action, 7 due member, 8 event id, 9 event body, 10 merchant id,
--       11 webhook url, 12 idem owner, 13 idem status, 14 idem body, 15 idem ttl,
--       16 journal entry (invoices move no money: ''), 17 event owner ('' : the merchant)
local cur = redis.call('HMGET', KEYS[1], 'v', 's', 'a')
if not cur[1] then return {'missing'} end
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then return {'conflict'} end
redis.call('HSET', KEYS[1], 's', ARGV[3], 'x', ARGV[4], 'u', ARGV[5],
           'v', tostring(tonumber(cur[1]) + 1))
local due = ARGV[6]
if ARGV[3] == 'issued' then
  local p = redis.call('HMGET', KEYS[2], 'a', 'rf')
  if p[1] and tonumber(p[1]) - tonumber(p[2] or '0') ~= tonumber(cur[3]) then
    due = ARGV[5]
  end
end
finish({KEYS[3], due, ARGV[7], KEYS[4], ARGV[8], ARGV[9], ARGV[10], ARGV[11],
        KEYS[1], ARGV[12], ARGV[13], ARGV[14], ARGV[15], KEYS[5], ARGV[16], ARGV[17]})
return {'ok'}
