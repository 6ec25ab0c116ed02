-- Close a red packet at its expiry (or a transfer declined before it was accepted) and
-- work out, exactly once, what goes back to the sender: what was never grabbed plus
-- every grab whose payout failed for good. Waits while any grab's payout is in flight.
-- KEYS: 1 packet, 2 grabs, 3.. the payouts of its grabs (all of them)
-- ARGV: 1 why early ('' : not before expiry; 'decline': an open transfer declined;
--       'payout_failed': a transfer whose one payout failed), 2 grabs the caller saw
local srv = server_ms()
local p = redis.call('HMGET', KEYS[1], 's', 'ex', 'ra', 'rf', 'n', 'v', 'ev', 'xd')
if not p[1] then return {'missing'} end
-- An accepted transfer cannot be declined, even while its event is still to be sent.
if ARGV[1] == 'decline' and p[1] == 'finished' then return {'state', p[1]} end
if p[8] == '1' then return {'done', p[4]} end
if p[7] ~= '' then return {'event_pending'} end
if p[1] ~= 'open' and p[1] ~= 'finished' then return {'state', p[1]} end
if ARGV[1] == 'decline' then
  if p[1] ~= 'open' then return {'state', p[1]} end
elseif ARGV[1] == 'payout_failed' then
  if p[1] ~= 'finished' then return {'state', p[1]} end
elseif srv < tonumber(p[2]) then
  return {'early', p[2]}
end
if p[5] ~= ARGV[2] then return {'retry'} end
local failed = 0
for i = 3, #KEYS do
  local po = redis.call('HMGET', KEYS[i], 's', 'a')
  if po[1] == 'processing' then return {'wait'} end
  if po[1] == 'failed' then failed = failed + tonumber(po[2]) end
end
local refund = tonumber(p[3]) + failed
local status, event = 'expired', 'expired'
if p[1] == 'finished' then
  status, event = 'finished', 'refunded'
  if refund == 0 then event = '' end
end
redis.call('HSET', KEYS[1], 's', status, 'rf', tostring(refund), 'ev', event, 'xd', '1',
           'u', tostring(srv), 'v', tostring(tonumber(p[6]) + 1))
return {'done', tostring(refund)}
