-- Accept a payment in one step: idempotency claim, rate limits, the out_trade_no natural
-- key, the payment record and its sweeper entry. Nothing is written unless accepted.
-- The payment id is derived from the merchant and out_trade_no (keys.payment_id), so the
-- record itself is the natural key.
-- KEYS: 1 idempotency, 2 payment, 3 due set, 4 merchant limit, 5 payer limit (all in the
--       merchant's slot; the rail's quota is global, so it is taken before this script
--       by rate_limit.lua)
-- ARGV: 1 use_idem, 2 request hash, 3 owner token, 4 lease ms, 5 idem ttl s,
--       6 payment id, 7 fingerprint, 8 creation blob, 9 rail-state blob, 10 amount,
--       11 now ms, 12 first due (ms), 13 status,
--       14/15 merchant interval/burst, 16/17 payer
local srv = server_ms()
local use_idem = ARGV[1] == '1'
if use_idem then
  local decided = idem_existing(KEYS[1], ARGV[2], ARGV[3], ARGV[4], srv)
  if decided then return decided end
end

local refused = admit({{KEYS[4], ARGV[14], ARGV[15]}, {KEYS[5], ARGV[16], ARGV[17]}}, srv)
if refused then return {'limited', tostring(refused[1]), tostring(refused[2]), refused[3]} end

local function claim(pid)
  if use_idem then
    redis.call('HSET', KEYS[1], 'h', ARGV[2], 'st', '0', 'o', ARGV[3],
               'l', srv + tonumber(ARGV[4]), 'p', pid)
    redis.call('EXPIRE', KEYS[1], ARGV[5])
  end
end

local fingerprint = redis.call('HGET', KEYS[2], 'f')
if fingerprint then
  if fingerprint ~= ARGV[7] then return {'conflict', ARGV[6]} end
  claim(ARGV[6])
  return {'exists', ARGV[6]}
end

redis.call('HSET', KEYS[2], 'd', ARGV[8], 'x', ARGV[9], 's', ARGV[13], 'v', '1',
           'u', ARGV[11], 'a', ARGV[10], 'f', ARGV[7])
redis.call('ZADD', KEYS[3], ARGV[12], 'p:' .. ARGV[6])
claim(ARGV[6])
return {'created'}
