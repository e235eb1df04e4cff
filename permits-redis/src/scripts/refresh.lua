-- Extend every lease of one process in one call.
--
-- KEYS[1] holders, KEYS[2] tokens, KEYS[3] queue, KEYS[4] meta (see acquire.lua)
-- ARGV[1] lease ttl ms, ARGV[2] wake channel, ARGV[3..] lease ids
-- Returns one flag per id: 1 extended, 0 lost. A lease that is gone or has
-- already expired (even if not yet removed) is never extended or re-added:
-- once expired, another process may hold its place.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expiry = string.format('%.0f', now + tonumber(ARGV[1]))
local out = {}
local removed = 0
for i = 3, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) > now then
    redis.call('ZADD', KEYS[1], 'XX', expiry, ARGV[i])
    out[#out + 1] = 1
  else
    if score then
      redis.call('ZREM', KEYS[1], ARGV[i])
      redis.call('HDEL', KEYS[2], ARGV[i])
      removed = removed + 1
    end
    out[#out + 1] = 0
  end
end
if removed > 0 then
  local limit = tonumber(redis.call('HGET', KEYS[4], 'limit') or 0)
  wake(KEYS[3], ARGV[2], limit - redis.call('ZCARD', KEYS[1]))
end
return out
