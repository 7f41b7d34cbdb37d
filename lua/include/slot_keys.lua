-- include/slot_keys.lua: inlined by holdsvc.scripts into each script that includes it.
-- The {cells hash, held zset} of each of `count` slots of a booking: the first slot's are the
-- script's own keys, the following slots' come in pairs from KEYS[from] on. nil when the caller
-- passed fewer pairs than the record spans (it built its keys from an older read).
local function slot_keys(first_cells, first_held, from, count)
  local pairs_out = {{first_cells, first_held}}
  for i = 1, count - 1 do
    local at = from + 2 * (i - 1)
    if not KEYS[at] or not KEYS[at + 1] then return nil end
    pairs_out[#pairs_out + 1] = {KEYS[at], KEYS[at + 1]}
  end
  return pairs_out
end
