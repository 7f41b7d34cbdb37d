-- include/end_hold.lua: inlined by holdsvc.scripts into each script that includes it.
-- Take a live hold out of the sweeper's and the user's sets and leave a tombstone behind.
local function end_hold(hold_key, holds_key, user_key, hold_id, units_count, status, tombstone_ms)
  redis.call('ZREM', holds_key, hold_id)
  redis.call('ZREM', user_key, hold_id .. '|' .. units_count)
  redis.call('HSET', hold_key, 'status', status)
  redis.call('PEXPIRE', hold_key, tombstone_ms)
end
