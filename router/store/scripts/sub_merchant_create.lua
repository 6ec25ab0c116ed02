-- Record a sub-merchant unless its id already names one. The id is derived from the
-- WeChat sub_mchid when there is one, so two service providers onboarding the same
-- merchant race here and exactly one creates it; the other links the same merchant.
-- KEYS: 1 merchant record
-- ARGV: field, value, ... (the whole record)
if redis.call('EXISTS', KEYS[1]) == 1 then return {'exists'} end
redis.call('HSET', KEYS[1], unpack(ARGV))
return {'created'}
