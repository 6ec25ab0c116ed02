-- Reserve a coupon for a payment about to be created: the coupon's owner and state,
-- its campaign's period and budget are checked, and the coupon, the budget (`sp`) and
-- the hold changed, in this one step: a coupon raced by two payments is reserved by one.
-- The hold is a campaign hold (campaign_reserve.lua) whose payer is "cpn:<coupon>",
-- so campaign_settle.lua brings it, and the coupon, in line with the payment.
-- A coupon is "status:payment:user" (status available | reserved | redeemed).
-- KEYS: 1 campaign, 2 its holds, 3 its coupons, 4 the campaign shard's due set
-- ARGV: 1 payment id, 2 coupon id, 3 the payer's user, 4 the amount off,
--       5 the payment's creation time (ms), 6 due time of the reservation's check (ms),
--       7 due member
-- Returns {'reserved', amount} | {'held', amount, status} | {'refused', why}.
local mine = 'cpn:' .. ARGV[2]
local held = redis.call('HGET', KEYS[2], ARGV[1])
if held then
  local amount, status, refs, clawed, payer = string.match(held, '^(%d+):(%a+):(%d+):(%d+):(.*)$')
  if payer ~= mine then return {'refused', 'taken'} end
  if status == 'reserved' then
    redis.call('HSET', KEYS[2], ARGV[1],
               table.concat({amount, status, tonumber(refs) + 1, clawed, payer}, ':'))
  end
  return {'held', amount, status}
end

local coupon = redis.call('HGET', KEYS[3], ARGV[2])
if not coupon then return {'refused', 'missing'} end
local status, _, user = string.match(coupon, '^(%a+):([^:]*):(.*)$')
if user ~= ARGV[3] then return {'refused', 'owner'} end
if status ~= 'available' then return {'refused', status} end

local c = redis.call('HMGET', KEYS[1], 's', 'b', 'sp', 'sa', 'ea')
if not c[1] or c[1] ~= 'live' then return {'refused', 'expired'} end
local at, ends = tonumber(ARGV[5]), tonumber(c[5])
if at < tonumber(c[4]) then return {'refused', 'scheduled'} end
if ends > 0 and at >= ends then return {'refused', 'expired'} end
local amount, budget = tonumber(ARGV[4]), tonumber(c[2])
if budget > 0 and tonumber(c[3]) + amount > budget then return {'refused', 'spent'} end

redis.call('HINCRBY', KEYS[1], 'sp', amount)
redis.call('HSET', KEYS[3], ARGV[2], table.concat({'reserved', ARGV[1], user}, ':'))
redis.call('HSET', KEYS[2], ARGV[1], string.format('%d:reserved:1:0:%s', amount, mine))
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[7])
return {'reserved', string.format('%d', amount)}
