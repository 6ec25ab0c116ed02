-- Take one unit of a merchant's quota for an action: a fixed window that opens at the
-- first call and lasts `per_ms`, in which at most `count` calls are admitted. The
-- quota's current figures apply to the open window (a lowered count refuses at once).
-- KEYS: 1 the quota hash (s window start ms, n units taken).
-- ARGV: 1 count, 2 per_ms.
-- Returns {'ok', window start} or {'over', ms until the window ends}; nothing is written
-- on a refusal.
local now = server_ms()
local count, per = tonumber(ARGV[1]), tonumber(ARGV[2])
local rec = redis.call('HMGET', KEYS[1], 's', 'n')
local start, used = tonumber(rec[1] or ''), tonumber(rec[2] or '0')
if start == nil or now >= start + per then
  start, used = now, 0
end
if used >= count then
  return {'over', tostring(start + per - now)}
end
redis.call('HSET', KEYS[1], 's', start, 'n', used + 1)
redis.call('PEXPIREAT', KEYS[1], start + per + 1000)
return {'ok', tostring(start)}
