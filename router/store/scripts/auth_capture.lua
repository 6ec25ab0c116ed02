-- Reserve the one capture of an authorization: the check (authorized, not expired by the
-- server's clock, amount <= what is held) and the change (capturing, the amount and the
-- capture's payment recorded, the sweeper entry) in one step, so two captures, or a
-- capture and the expiry, can never both take the hold.
-- KEYS: 1 authorization, 2 due set
-- ARGV: 1 amount, 2 payment id, 3 out_trade_no, 4 now ms, 5 due ms, 6 authorization id
local cur = redis.call('HMGET', KEYS[1], 's', 'a', 'cp', 'c', 'ex', 'v')
if not cur[1] then return {'missing'} end
local amount = tonumber(ARGV[1])
if cur[3] == ARGV[2] and (cur[1] == 'capturing' or cur[1] == 'captured') then
  -- This very capture again (a retry after a lost answer): the caller re-drives it.
  if tonumber(cur[4]) == amount then return {'same', cur[1]} end
  return {'state', cur[1]}
end
if cur[1] ~= 'authorized' then return {'state', cur[1]} end
if amount > tonumber(cur[2]) then return {'over', cur[2]} end
if server_ms() >= tonumber(cur[5]) then return {'expired'} end
local version = tonumber(cur[6]) + 1
redis.call('HSET', KEYS[1], 's', 'capturing', 'c', ARGV[1], 'cp', ARGV[2], 'co', ARGV[3],
           'v', tostring(version), 'u', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[5], 'au:' .. ARGV[6])
return {'ok', tostring(version)}
