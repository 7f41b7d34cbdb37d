-- include/free_hold_cells.lua: inlined by holdsvc.scripts into each script that includes it.
-- Free the cells that still point at this hold (a lapsed cell may already be someone else's).
local function free_hold_cells(cells_key, held_key, hold_id, units)
  local prefix = 'h|' .. hold_id .. '|'
  for _, unit in ipairs(units) do
    local state = redis.call('HGET', cells_key, unit)
    if state and string.sub(state, 1, #prefix) == prefix then
      redis.call('HDEL', cells_key, unit)
      redis.call('ZREM', held_key, unit)
    end
  end
end
