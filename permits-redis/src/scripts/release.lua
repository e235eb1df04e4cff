-- Give leases back and take cancelled waiters out of the queue, in one call.
--
-- KEYS[1] holders, KEYS[2] tokens, KEYS[3] queue, KEYS[4] waiters (see acquire.lua)
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
if changed > 0 and redis.call('ZCARD', KEYS[3]) > 0 then
  redis.call('PUBLISH', ARGV[1], 'free')
end
return freed
