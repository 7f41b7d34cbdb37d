--[[
edit_table.lua: change a table's label and/or capacity. A larger capacity (or a new label)
is always allowed; a smaller one only while no booking or live hold is on the table in a
slot that has not ended (a party already seated there might no longer fit), checked in the
same step as the change.

Input:
  KEYS[1]  slots zset          slot id -> start ms
  KEYS[2]  units hash          unit id -> capacity
  KEYS[3]  units-label hash    unit id -> label
  KEYS[4]  units-by-fit zset   unit id -> capacity * 2^20 + sequence
  KEYS[5]  venue hash          slot_minutes
  KEYS[6..] cells hash         of each slot in ARGV[5..], in the same order
  ARGV[1]  unit id
  ARGV[2]  capacity            '' = unchanged
  ARGV[3]  label action        'keep', 'set' or 'clear'
  ARGV[4]  label               (for 'set')
  ARGV[5..] slot ids           every slot of the grid the caller read as not yet ended
Output: {code, now ms, ...}
  0  OK                      changed
  12 UNIT_NOT_FOUND          unit id
  44 TABLE_IN_USE            unit id, the references and hold ids in the way (", "-joined)
  52 NEEDS_SWEEP             hold ids of lapsed holds on its cells (sweep, then retry)
  54 STALE                   a slot not yet ended is missing from ARGV: read the grid again
]]

--- @include "now_ms"
--- @include "sweep_reply"
--- @include "unit_blockers"

local unit = ARGV[1]
local new_capacity = ARGV[2]
local label_action = ARGV[3]
local label = ARGV[4]
local now = now_ms()

local capacity = redis.call('HGET', KEYS[2], unit)
if not capacity then return {12, now, unit} end
if new_capacity ~= '' and tonumber(new_capacity) < tonumber(capacity) then
  local slot_ms = tonumber(redis.call('HGET', KEYS[5], 'slot_minutes') or '60') * 60000
  local blockers, lapsed, stale = unit_blockers(KEYS[1], slot_ms, now, unit, 6, 5)
  if stale then return {54, now} end
  if #blockers > 0 then return {44, now, unit, table.concat(blockers, ', ')} end
  if #lapsed > 0 then return sweep_reply(now, lapsed) end
end

if new_capacity ~= '' then
  -- Best fit orders by capacity, then creation: the sequence part of the score is kept.
  local sequence = tonumber(redis.call('ZSCORE', KEYS[4], unit)) % 1048576
  redis.call('HSET', KEYS[2], unit, new_capacity)
  redis.call('ZADD', KEYS[4], tonumber(new_capacity) * 1048576 + sequence, unit)
end
if label_action == 'set' then redis.call('HSET', KEYS[3], unit, label) end
if label_action == 'clear' then redis.call('HDEL', KEYS[3], unit) end
return {0, now}
