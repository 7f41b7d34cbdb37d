-- include/repeated_unit.lua: inlined by holdsvc.scripts into each script that includes it.
-- The first unit id a list names more than once (nil: none): one cell is claimed once.
local function repeated_unit(units)
  local seen = {}
  for _, unit in ipairs(units) do
    if seen[unit] then return unit end
    seen[unit] = true
  end
  return nil
end
