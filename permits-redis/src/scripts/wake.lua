-- Prepended to acquire.lua, refresh.lua and release.lua (see inner.rs).
-- Tell the waiters that a permit is theirs now (the first `free` of the
-- queue) by publishing their ids, so only they ask again: no herd.
local function wake(queue, channel, free)
  if free > 0 then
    local next = redis.call('ZRANGE', queue, 0, free - 1)
    if #next > 0 then
      redis.call('PUBLISH', channel, table.concat(next, ' '))
    end
  end
end
