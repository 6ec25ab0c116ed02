-- End a campaign early: no reservation is taken after this (campaign_reserve.lua reads
-- `s`); rewards already held run their course.
-- KEYS: 1 campaign
-- ARGV: 1 now ms
-- Returns {'ok', ended ms} (the first end's time, when it was ended already) or {'missing'}.
local c = redis.call('HMGET', KEYS[1], 's', 'e')
if not c[1] then return {'missing'} end
if c[1] == 'ended' then return {'ok', c[2]} end
redis.call('HSET', KEYS[1], 's', 'ended', 'e', ARGV[1])
return {'ok', ARGV[1]}
