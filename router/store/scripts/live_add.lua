-- Add one process's counts of one second to that second's buckets, with their expiry,
-- in one step (a bucket without its TTL would never go away).
-- KEYS: 1 figures bucket, 2 creates-by-merchant bucket (one hash tag: one slot).
-- ARGV: 1 ttl s, 2 number of figure fields n, then n (field, count) pairs, then
--       (merchant id, creates) pairs.
local n = tonumber(ARGV[2])
for i = 3, 2 + 2 * n, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
if n > 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local first_merchant = 3 + 2 * n
for i = first_merchant, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1])
end
if #ARGV >= first_merchant then redis.call('EXPIRE', KEYS[2], ARGV[1]) end
return 1
