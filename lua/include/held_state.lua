-- include/held_state.lua: inlined by holdsvc.scripts into each script that includes it.
local function held_state(hold_id, expires)
  return 'h|' .. hold_id .. '|' .. string.format('%d', expires)
end
