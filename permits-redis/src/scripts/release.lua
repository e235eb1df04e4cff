-- Give leases back and take cancelled waiters out of the queue, in one call.
--
-- KEYS[1] holders, KEYS[2] tokens, KEYS[3] queue, KEYS[4] waiters, KEYS[5] meta
-- (see acquire.lua)
-- ARGV[1] wake channel, ARGV[2..] lease ids
-- Returns how many leases were still held. Idempotent.
local changed = 0
local freed = 0
for i = 2, #ARGV do
  local n = redis.call('ZREM', KEYS[1], ARGV[i])
  freed = freed + n
  redis.call('HDEL', KEYS[2], ARGV[i])
  changed = changed + n + redis.call('ZREM', KEYS[3], ARGV[i])
  redis.call('ZREM', KEYS[4], ARGV[i])
end
if changed > 0 then
  local limit = tonumber(redis.call('HGET', KEYS[5], 'limit') or 0)
  wake(KEYS[3], ARGV[1], limit - redis.call('ZCARD', KEYS[1]))
end
return freed
