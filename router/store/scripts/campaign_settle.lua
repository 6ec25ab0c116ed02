-- Bring a payment's reservation in line with what happened, in one step with the
-- campaign's counters (spent, the payer's count and amount), so `spent` is always the
-- sum of the rewards held and a released reward frees its payer's first-N place.
-- Actions (ARGV[2]):
--   drop     a request that reserved did not create the payment: it gives its hold up;
--            the reward is freed (and forgotten) when no other request holds it
--   forget   the payment does not exist, or does not carry this reward: freed, forgotten
--   release  the payment ended unpaid, or its cashback cannot be paid: freed, kept as
--            released (a retried create of that payment finds it and reserves nothing)
--   grant    the reward stands; ARGV[3] is what refunds have taken back of it so far in
--            all (a running total, so a repeat takes nothing twice): that much goes back
--            to the budget, and all of it makes the reward clawed_back
-- A coupon's hold (payer "cpn:<coupon>", coupon_reserve.lua) moves its coupon too:
-- redeemed when granted, available again when freed; a refund leaves it redeemed.
-- KEYS: 1 campaign, 2 its payers, 3 its holds, 4 the campaign shard's due set,
--       5 its coupons
-- ARGV: 1 payment id, 2 action, 3 claw-back total (grant), 4 due member,
--       5 '1': remove the due member once the reward is granted
-- Returns {status after, amount given back to the budget by this call}.
local function free(payer, amount, uncount)
  redis.call('HINCRBY', KEYS[1], 'sp', -amount)
  local mine = redis.call('HGET', KEYS[2], payer)
  if not mine then return end
  local n, sum = string.match(mine, '^(%d+):(%d+)$')
  n, sum = tonumber(n), math.max(tonumber(sum) - amount, 0)
  if uncount then n = n - 1 end
  if n <= 0 then
    redis.call('HDEL', KEYS[2], payer)
  else
    redis.call('HSET', KEYS[2], payer, string.format('%d:%d', n, sum))
  end
end

-- The hold's coupon (if it is one) to `state`, while this payment holds it.
local function coupon_to(payer, state)
  local id = string.match(payer, '^cpn:(.+)$')
  if not id then return end
  local coupon = redis.call('HGET', KEYS[5], id)
  if not coupon then return end
  local _, payment, user = string.match(coupon, '^(%a+):([^:]*):(.*)$')
  if payment ~= ARGV[1] then return end
  if state == 'available' then payment = '' end
  redis.call('HSET', KEYS[5], id, table.concat({state, payment, user}, ':'))
end

local held = redis.call('HGET', KEYS[3], ARGV[1])
if not held then
  redis.call('ZREM', KEYS[4], ARGV[4])
  return {'none', '0'}
end
local a, status, r, cl, payer = string.match(held, '^(%d+):(%a+):(%d+):(%d+):(.*)$')
local amount, refs, clawed = tonumber(a), tonumber(r), tonumber(cl)
local action = ARGV[2]

local function save(new_status, new_refs, new_clawed)
  redis.call('HSET', KEYS[3], ARGV[1], string.format('%d:%s:%d:%d:%s', amount, new_status,
                                                     new_refs, new_clawed, payer))
end

if action == 'drop' then
  if status ~= 'reserved' then return {status, '0'} end
  if refs > 1 then
    save(status, refs - 1, clawed)
    return {status, '0'}
  end
  free(payer, amount, true)
  coupon_to(payer, 'available')
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('ZREM', KEYS[4], ARGV[4])
  return {'dropped', string.format('%d', amount)}
end

if action == 'forget' then
  local back = 0
  if status == 'reserved' then
    free(payer, amount, true)
    coupon_to(payer, 'available')
    back = amount
  end
  if status == 'reserved' or status == 'released' then redis.call('HDEL', KEYS[3], ARGV[1]) end
  redis.call('ZREM', KEYS[4], ARGV[4])
  return {'forgotten', string.format('%d', back)}
end

if action == 'release' then
  if status ~= 'reserved' then return {status, '0'} end
  free(payer, amount, true)
  coupon_to(payer, 'available')
  save('released', 0, 0)
  redis.call('ZREM', KEYS[4], ARGV[4])
  return {'released', string.format('%d', amount)}
end

-- grant
if status == 'released' then return {status, '0'} end
if status == 'reserved' then
  status = 'granted'
  coupon_to(payer, 'redeemed')
  if ARGV[5] == '1' then redis.call('ZREM', KEYS[4], ARGV[4]) end
end
local target = math.min(tonumber(ARGV[3]), amount)
local back = 0
if target > clawed then
  back = target - clawed
  free(payer, back, false)
  clawed = target
end
if clawed >= amount then status = 'clawed_back' end
save(status, 0, clawed)
return {status, string.format('%d', back)}
