-- Admit one call against up to N GCRA keys. KEYS: the limit keys.
-- ARGV: interval ms and burst per key, in KEYS order.
local specs = {}
for i, key in ipairs(KEYS) do specs[i] = {key, ARGV[2 * i - 1], ARGV[2 * i]} end
local refused = admit(specs, server_ms())
if refused then return {'limited', tostring(refused[1]), tostring(refused[2]), refused[3]} end
return {'ok'}
