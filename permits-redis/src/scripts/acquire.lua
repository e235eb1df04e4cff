-- Take a lease, or queue for one (FIFO), for the caller's lease id.
--
-- KEYS[1] holders  zset: lease id -> expiry (server ms)
-- KEYS[2] tokens   hash: lease id -> fencing token
-- KEYS[3] queue    zset: lease id -> ticket number (arrival order)
-- KEYS[4] waiters  zset: lease id -> heartbeat expiry (server ms)
-- KEYS[5] meta     hash: limit, token (last fencing token), ticket (last ticket)
-- ARGV[1] limit, ARGV[2] lease id, ARGV[3] lease ttl ms, ARGV[4] waiter ttl ms,
-- ARGV[5] "try" (never queue) or "queue", ARGV[6] wake channel
--
-- Returns {1, token, ms left} when the caller holds the lease (also when a
-- retry finds the lease an earlier, lost reply granted: no second lease),
-- {0, waiters ahead} otherwise. Errors "PERMITS_LIMIT_MISMATCH <stored>".
-- Time comes from the server's clock only (TIME), never from a client.
local limit = tonumber(ARGV[1])
local id = ARGV[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function ms(x) return string.format('%.0f', x) end

local stored = redis.call('HGET', KEYS[5], 'limit')
if not stored then
  redis.call('HSET', KEYS[5], 'limit', ARGV[1])
  -- Tokens start at the server clock in microseconds (digits spliced as
  -- strings: a Lua number would print in exponent form), so they still grow
  -- after the data was lost, unless more than a million were handed out per
  -- second on average.
  redis.call('HSETNX', KEYS[5], 'token', t[1] .. string.format('%06d', tonumber(t[2])))
elseif tonumber(stored) ~= limit then
  return redis.error_reply('PERMITS_LIMIT_MISMATCH ' .. stored)
end

-- Drop expired leases and waiters whose heartbeat stopped (a crashed
-- process), a bounded batch per call.
local removed = 0
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ms(now), 'LIMIT', 0, 500)
if #gone > 0 then
  redis.call('ZREM', KEYS[1], unpack(gone))
  redis.call('HDEL', KEYS[2], unpack(gone))
  removed = removed + #gone
end
local dead = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ms(now), 'LIMIT', 0, 500)
if #dead > 0 then
  redis.call('ZREM', KEYS[4], unpack(dead))
  redis.call('ZREM', KEYS[3], unpack(dead))
  removed = removed + #dead
end

local expiry = redis.call('ZSCORE', KEYS[1], id)
if expiry then
  return {1, tonumber(redis.call('HGET', KEYS[2], id)), tonumber(expiry) - now}
end

local free = limit - redis.call('ZCARD', KEYS[1])
local rank = redis.call('ZRANK', KEYS[3], id)
local ahead = rank or redis.call('ZCARD', KEYS[3])
if free > ahead then
  local ttl = tonumber(ARGV[3])
  redis.call('ZADD', KEYS[1], ms(now + ttl), id)
  redis.call('ZREM', KEYS[3], id)
  redis.call('ZREM', KEYS[4], id)
  local token = redis.call('HINCRBY', KEYS[5], 'token', 1)
  redis.call('HSET', KEYS[2], id, token)
  wake(KEYS[3], ARGV[6], free - 1)
  return {1, token, ttl}
end

if removed > 0 then
  wake(KEYS[3], ARGV[6], free)
end
if ARGV[5] == 'try' then
  return {0, ahead}
end
if not rank then
  redis.call('ZADD', KEYS[3], redis.call('HINCRBY', KEYS[5], 'ticket', 1), id)
end
redis.call('ZADD', KEYS[4], ms(now + tonumber(ARGV[4])), id)
return {0, ahead}
