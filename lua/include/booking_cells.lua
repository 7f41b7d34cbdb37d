-- include/booking_cells.lua: inlined by holdsvc.scripts into each script that includes it.
-- The feed entry's cells of a booking, as JSON [{"slot":..,"unit":..}]: slot by slot, each
-- slot's units in their order (one slot: the same list as cells_json).
local function booking_cells(slots, units)
  local cells = {}
  for _, slot in ipairs(slots) do
    for _, unit in ipairs(units) do cells[#cells + 1] = {slot = slot, unit = unit} end
  end
  return cjson.encode(cells)
end
