-- include/span_start.lua: inlined by holdsvc.scripts into each script that includes it.
-- Where a booking of several slots starts: the first slot's start ms, when every slot id is in
-- the grid `step` ms after the one before (k consecutive grid slots, DESIGN.md 8). Returns
-- start ms (nil: the first slot is not in the grid), and whether the whole span is.
local function span_start(slots_key, slot_ids, step)
  local first = tonumber(redis.call('ZSCORE', slots_key, slot_ids[1]))
  if not first then return nil, false end
  for i = 2, #slot_ids do
    local start = tonumber(redis.call('ZSCORE', slots_key, slot_ids[i]))
    if start ~= first + (i - 1) * step then return first, false end
  end
  return first, true
end
