--[[
lib.lua: helpers prepended by holdsvc.scripts to every script below (not a script itself).
It reads no KEYS[1] or ARGV[1] of its own: every function is handed the keys its script got
in KEYS, so each script still touches only keys passed in KEYS.

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

-- Choose the units of one slot for a new claim: the named ones, or the best `count` that fit
-- `party_size` (smallest capacity first, ties: created first). A cell counts as free when it
-- is absent, lapsed, or `own_state` (a reservation's own cell, when it moves).
-- Returns chosen, lapsed hold ids; or nil, the error reply (see the calling script's codes).
local function choose_units(cells_key, units_key, fit_key, asked, party_size, count, now,
                            own_state, kind)
  local chosen, lapsed, lapsed_seen = {}, {}, {}
  local function note_lapsed(owner)
    if not lapsed_seen[owner] then
      lapsed_seen[owner] = true
      lapsed[#lapsed + 1] = owner
    end
  end
  if #asked > 0 then
    local latest_block, blocked_unit, reserved_block = nil, nil, false
    local capacities = redis.call('HMGET', units_key, unpack(asked))
    local states = redis.call('HMGET', cells_key, unpack(asked))
    for i, unit in ipairs(asked) do
      if not capacities[i] then return nil, {12, now, unit} end
      if tonumber(capacities[i]) < party_size then return nil, {31, now, -1} end
      local state_kind, owner, expires = parse_cell(states[i])
      if states[i] == own_state then
        state_kind = nil
      end
      if state_kind == 'r' then
        blocked_unit = blocked_unit or unit
        reserved_block = true
      elseif state_kind == 'h' and expires > now then
        blocked_unit = blocked_unit or unit
        if not latest_block or expires > latest_block then latest_block = expires end
      elseif state_kind == 'h' then
        note_lapsed(owner)
      end
      chosen[i] = unit
    end
    if blocked_unit then
      if reserved_block then latest_block = -1 end
      return nil, {30, now, blocked_unit, latest_block}
    end
    return chosen, lapsed
  end
  local earliest_block = nil
  local offset = 0
  while #chosen < count do
    local batch = redis.call('ZRANGEBYSCORE', fit_key, party_size * 1048576, '+inf',
      'LIMIT', offset, 256)
    if #batch == 0 then break end
    local states = redis.call('HMGET', cells_key, unpack(batch))
    for i, unit in ipairs(batch) do
      local state_kind, owner, expires = parse_cell(states[i])
      if state_kind == nil or states[i] == own_state then
        chosen[#chosen + 1] = unit
      elseif state_kind == 'h' and expires <= now then
        chosen[#chosen + 1] = unit
        note_lapsed(owner)
      elseif state_kind == 'h' and (not earliest_block or expires < earliest_block) then
        earliest_block = expires
      end
      if #chosen == count then break end
    end
    offset = offset + #batch
  end
  if #chosen < count then
    if kind == 'event' then return nil, {32, now, earliest_block or -1} end
    return nil, {31, now, earliest_block or -1}
  end
  return chosen, lapsed
end

-- A lapsed hold on a chosen cell must end first (its own 'expired' entry): ask to sweep it.
local function sweep_reply(now, lapsed)
  local reply = {52, now}
  for _, owner in ipairs(lapsed) do reply[#reply + 1] = owner end
  return reply
end

-- Why a guest may not claim a slot starting at slot_start now (nil: they may): bookings
-- paused (34), slot started (35), outside min notice / max days ahead (36).
local function booking_refusal(bookings_open, min_notice, max_days, slot_start, now)
  if bookings_open ~= '1' then return 34 end
  if slot_start <= now then return 35 end
  if min_notice and slot_start < now + tonumber(min_notice) * 60000 then return 36 end
  if max_days and slot_start > now + tonumber(max_days) * 86400000 then return 36 end
  return nil
end
