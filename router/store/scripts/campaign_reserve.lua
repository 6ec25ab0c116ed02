-- Reserve a campaign's reward for a payment about to be created, every limit checked
-- and changed in this one step: the campaign's counters all share its slot, so the
-- limits are exact on a cluster too. Keyed by the payment: a create that is retried
-- (same payment id) finds the reservation instead of taking a second, and holds it too
-- (`refs`), so it is freed only when the last request holding it gave it up.
-- The reward is cut to what the payer's cap and the budget leave, or skipped.
-- A hold is "amount:status:refs:clawed:payer" (status reserved | granted | released |
-- clawed_back); a payer is "count:amount" of the rewards they hold.
-- KEYS: 1 campaign, 2 its payers, 3 its holds, 4 the campaign shard's due set
-- ARGV: 1 payment id, 2 payer digest, 3 the reward wanted, 4 the payment's creation
--       time (ms), 5 due time of the reservation's check (ms), 6 due member
-- Returns {'reserved', amount} | {'held', amount, status} | {'skip', why}.
local held = redis.call('HGET', KEYS[3], ARGV[1])
if held then
  local amount, status, refs, rest = string.match(held, '^(%d+):(%a+):(%d+):(.*)$')
  if status == 'reserved' then
    redis.call('HSET', KEYS[3], ARGV[1],
               table.concat({amount, status, tonumber(refs) + 1, rest}, ':'))
  end
  return {'held', amount, status}
end

local c = redis.call('HMGET', KEYS[1], 's', 'b', 'sp', 'fn', 'pc', 'pa', 'sa', 'ea')
if not c[1] then return {'skip', 'missing'} end
if c[1] ~= 'live' then return {'skip', 'ended'} end
local at, ends = tonumber(ARGV[4]), tonumber(c[8])
if at < tonumber(c[7]) then return {'skip', 'scheduled'} end
if ends > 0 and at >= ends then return {'skip', 'ended'} end

local count, got = 0, 0
local mine = redis.call('HGET', KEYS[2], ARGV[2])
if mine then
  local n, sum = string.match(mine, '^(%d+):(%d+)$')
  count, got = tonumber(n), tonumber(sum)
else
  local first_n = tonumber(c[4])
  if first_n > 0 and redis.call('HLEN', KEYS[2]) >= first_n then
    return {'skip', 'first_n'}
  end
end
local per_count = tonumber(c[5])
if per_count > 0 and count >= per_count then return {'skip', 'per_payer'} end

local reward = tonumber(ARGV[3])
local per_amount = tonumber(c[6])
if per_amount > 0 then reward = math.min(reward, per_amount - got) end
local budget = tonumber(c[2])
if budget > 0 then reward = math.min(reward, budget - tonumber(c[3])) end
if reward < 1 then return {'skip', 'spent'} end

redis.call('HINCRBY', KEYS[1], 'sp', reward)
redis.call('HSET', KEYS[2], ARGV[2], string.format('%d:%d', count + 1, got + reward))
redis.call('HSET', KEYS[3], ARGV[1], string.format('%d:reserved:1:0:%s', reward, ARGV[2]))
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[6])
return {'reserved', string.format('%d', reward)}
