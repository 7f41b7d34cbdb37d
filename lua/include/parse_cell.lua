-- include/parse_cell.lua: inlined by holdsvc.scripts into each script that includes it.
-- Cell states in a cells hash (field = unit id):
--   absent                     free
--   "h|<hold id>|<expires ms>" held; free again once Redis TIME reaches expires
--   "r|<reference>"            reserved
-- Parse a cell state into kind ('h' or 'r'), owner (hold id or reference), expires (ms or nil).
local function parse_cell(state)
  if not state then return nil, nil, nil end
  if string.sub(state, 1, 1) == 'r' then return 'r', string.sub(state, 3), nil end
  local sep = string.find(state, '|', 3, true)
  return 'h', string.sub(state, 3, sep - 1), tonumber(string.sub(state, sep + 1))
end
