-- include/unit_blockers.lua: inlined by holdsvc.scripts into each script that includes it.
--- @include "parse_cell"
-- What stands in the way of changing one unit: its cells in the slots that have not ended.
-- `slots_key`: the grid zset; `slot_ms`: a slot's length; `first_cell_key`: the index in
-- KEYS of the cells hash of ARGV[first_slot_arg] (then one each, in the same order).
-- Returns (blockers, lapsed, stale): references and live hold ids on the unit (by Redis
-- time), lapsed hold ids to sweep first, and true when the grid has a slot that has not ended
-- that the caller did not list (it read the grid before a slot was added: read again).
local function unit_blockers(slots_key, slot_ms, now, unit, first_cell_key, first_slot_arg)
  local listed = {}
  for i = first_slot_arg, #ARGV do listed[ARGV[i]] = first_cell_key + (i - first_slot_arg) end
  -- A slot ends at start + slot_ms: those starting after now - slot_ms have not ended.
  local open = redis.call('ZRANGEBYSCORE', slots_key, '(' .. string.format('%d', now - slot_ms),
    '+inf')
  local blockers, lapsed, seen = {}, {}, {}
  for _, slot in ipairs(open) do
    local index = listed[slot]
    if not index then return nil, nil, true end
    local kind, owner, expires = parse_cell(redis.call('HGET', KEYS[index], unit))
    if kind and not seen[owner] then
      seen[owner] = true
      if kind == 'r' or expires > now then
        blockers[#blockers + 1] = owner
      else
        lapsed[#lapsed + 1] = owner
      end
    end
  end
  return blockers, lapsed, false
end
