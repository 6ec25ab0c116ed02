-- Give back a unit taken by policy_quota.lua for a call that then did nothing (refused,
-- or answered with an object that existed already). Only into the window it was taken
-- from: a window that has rolled over since owes nothing.
-- KEYS: 1 the quota hash.  ARGV: 1 the window start the unit was taken in.
local rec = redis.call('HMGET', KEYS[1], 's', 'n')
if rec[1] == ARGV[1] and tonumber(rec[2] or '0') > 0 then
  redis.call('HINCRBY', KEYS[1], 'n', -1)
end
return {'ok'}
