-- Give back one call admitted by rate_limit.lua that was then not made (the payment was
-- refused or answered from a stored response): the quota counts calls to the rail.
-- KEYS: 1 the limit key. ARGV: 1 its interval ms.
local now = server_ms()
local back = tonumber(redis.call('GET', KEYS[1]) or '0') - tonumber(ARGV[1])
if back <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], tostring(back), 'PX', math.ceil(back - now) + 1000)
end
return {'ok'}
