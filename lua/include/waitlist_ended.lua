-- include/waitlist_ended.lua: inlined by holdsvc.scripts into each script that includes it.
-- How long an ended waitlist entry stays readable (its page, its bearer's GET), and how many
-- of the oldest past that each ending drops: the entries hash stays bounded by recent activity.
local WAITLIST_KEEP_MS = 7 * 24 * 3600 * 1000
local WAITLIST_DROP_PER_END = 4

-- An entry ends: it stays readable for WAITLIST_KEEP_MS, and the oldest entries ended before
-- that are dropped now, a few at a time.
local function waitlist_ended(ended_key, entries_key, entry_id, now)
  redis.call('ZADD', ended_key, now, entry_id)
  local old = redis.call('ZRANGEBYSCORE', ended_key, '-inf', now - WAITLIST_KEEP_MS, 'LIMIT', 0,
    WAITLIST_DROP_PER_END)
  for _, id in ipairs(old) do
    redis.call('HDEL', entries_key, id)
    redis.call('ZREM', ended_key, id)
  end
end
