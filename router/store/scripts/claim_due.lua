-- Take up to ARGV[2] members due by ARGV[1] (ms) and push them ARGV[3] ms into the
-- future: a lease, so that a process that dies holding them only delays them.
-- KEYS: 1 the due set.
local items = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local until_ms = tonumber(ARGV[1]) + tonumber(ARGV[3])
for _, member in ipairs(items) do redis.call('ZADD', KEYS[1], until_ms, member) end
return items
