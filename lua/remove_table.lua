--[[
remove_table.lua: take a table out of a restaurant unless a booking or a live hold is on it in
a slot that has not ended. The check and the removal are one step, so a hold landing on the
table comes either before it (the table is kept, the hold named) or after it (the table is
no longer there for hold.lua): never a claimed cell of a removed table in a slot still to come.
Past bookings keep naming the table; it is recorded in the removed-units hash for them.

Input:
  KEYS[1]  slots zset          slot id -> start ms
  KEYS[2]  units hash          unit id -> capacity
  KEYS[3]  units-label hash    unit id -> label
  KEYS[4]  units-by-fit zset   unit id -> capacity * 2^20 + sequence
  KEYS[5]  removed-units hash  unit id -> "<removed ms>|<capacity>|<label>"
  KEYS[6]  venue hash          slot_minutes
  KEYS[7..] cells hash         of each slot in ARGV[2..], in the same order
  ARGV[1]  unit id
  ARGV[2..] slot ids           every slot of the grid the caller read as not yet ended
Output: {code, now ms, ...}
  0  OK                      removed
  12 UNIT_NOT_FOUND          unit id
  44 TABLE_IN_USE            unit id, the references and hold ids in the way (", "-joined)
  52 NEEDS_SWEEP             hold ids of lapsed holds on its cells (sweep, then retry)
  54 STALE                   a slot not yet ended is missing from ARGV: read the grid again
]]

--- @include "now_ms"
--- @include "sweep_reply"
--- @include "unit_blockers"

local unit = ARGV[1]
local now = now_ms()

local capacity = redis.call('HGET', KEYS[2], unit)
if not capacity then return {12, now, unit} end
local slot_ms = tonumber(redis.call('HGET', KEYS[6], 'slot_minutes') or '60') * 60000
local blockers, lapsed, stale = unit_blockers(KEYS[1], slot_ms, now, unit, 7, 2)
if stale then return {54, now} end
if #blockers > 0 then return {44, now, unit, table.concat(blockers, ', ')} end
-- A lapsed hold ends first with its own 'expired' entry, as for a new claim.
if #lapsed > 0 then return sweep_reply(now, lapsed) end

local label = redis.call('HGET', KEYS[3], unit) or ''
redis.call('HDEL', KEYS[2], unit)
redis.call('HDEL', KEYS[3], unit)
redis.call('ZREM', KEYS[4], unit)
redis.call('HSET', KEYS[5], unit, string.format('%d', now) .. '|' .. capacity .. '|' .. label)
return {0, now}
