-- include/choose_units.lua: inlined by holdsvc.scripts into each script that includes it.
--- @include "parse_cell"
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
