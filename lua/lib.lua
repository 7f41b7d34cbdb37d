--[[
lib.lua: helpers prepended by holdsvc.scripts to every script below (not a script itself).

Cell states in a cells hash (field = unit id):
  absent                     free
  "h|<hold id>|<expires ms>" held; free again once Redis TIME reaches expires
  "r|<reference>"            reserved
]]

-- One clock for everyone: Redis TIME, in milliseconds.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function split_csv(text)
  local out = {}
  if text == nil or text == '' then return out end
  for part in string.gmatch(text, '[^,]+') do out[#out + 1] = part end
  return out
end

local function held_state(hold_id, expires)
  return 'h|' .. hold_id .. '|' .. string.format('%d', expires)
end

-- Parse a cell state into kind ('h' or 'r'), owner (hold id or reference), expires (ms or nil).
local function parse_cell(state)
  if not state then return nil, nil, nil end
  if string.sub(state, 1, 1) == 'r' then return 'r', string.sub(state, 3), nil end
  local sep = string.find(state, '|', 3, true)
  return 'h', string.sub(state, 3, sep - 1), tonumber(string.sub(state, sep + 1))
end

-- The feed entry's cells, as JSON [{"slot":..,"unit":..}], in unit order.
local function cells_json(slot, units)
  local cells = {}
  for i, unit in ipairs(units) do cells[i] = {slot = slot, unit = unit} end
  return cjson.encode(cells)
end

-- Every state change appends exactly one entry to the venue's feed, in the same script.
local function feed_append(feed, maxlen, event, now, hold_id, user_id, reference, cells)
  return redis.call('XADD', feed, 'MAXLEN', '~', maxlen, '*',
    'event', event, 'at', string.format('%d', now), 'hold', hold_id or '',
    'user', user_id or '', 'ref', reference or '', 'cells', cells)
end

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

-- Take a live hold out of the sweeper's and the user's sets and leave a tombstone behind.
local function end_hold(hold_key, holds_key, user_key, hold_id, units_count, status, tombstone_ms)
  redis.call('ZREM', holds_key, hold_id)
  redis.call('ZREM', user_key, hold_id .. '|' .. units_count)
  redis.call('HSET', hold_key, 'status', status)
  redis.call('PEXPIRE', hold_key, tombstone_ms)
end
