-- include/cells_json.lua: inlined by holdsvc.scripts into each script that includes it.
-- The feed entry's cells, as JSON [{"slot":..,"unit":..}], in unit order.
local function cells_json(slot, units)
  local cells = {}
  for i, unit in ipairs(units) do cells[i] = {slot = slot, unit = unit} end
  return cjson.encode(cells)
end
