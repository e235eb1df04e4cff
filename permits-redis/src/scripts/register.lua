-- Record the limit of a name, or check it against the recorded one.
--
-- KEYS[1] meta hash (see acquire.lua); ARGV[1] limit
-- Returns the limit. Errors "PERMITS_LIMIT_MISMATCH <stored>".
local stored = redis.call('HGET', KEYS[1], 'limit')
if not stored then
  local t = redis.call('TIME')
  redis.call('HSET', KEYS[1], 'limit', ARGV[1])
  redis.call('HSETNX', KEYS[1], 'token', t[1] .. string.format('%06d', tonumber(t[2])))
  return tonumber(ARGV[1])
elseif tonumber(stored) ~= tonumber(ARGV[1]) then
  return redis.error_reply('PERMITS_LIMIT_MISMATCH ' .. stored)
end
return tonumber(stored)
