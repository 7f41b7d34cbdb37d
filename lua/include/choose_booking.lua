-- include/choose_booking.lua: inlined by holdsvc.scripts into each script that includes it.
--- @include "parse_cell"
-- Choose the tables of a booking spanning the slots of `slot_pairs` ({cells key, held key}
-- each): every cell of the chosen tables must be free in every slot (absent, lapsed, or
-- `own_state`: a reservation's own cells when it moves). `asked`: {} for best fit, or one id
-- (a table, or a combination when `combos_key` is given). Best fit: the smallest single table
-- that fits `party_size` (ties: created first), then the smallest combination (ties: created
-- first). Returns tables, lapsed hold ids on them, combination id (or false); or nil, the
-- error reply: {12 id} unknown, {30 id, latest expires | -1} named one taken, {31 earliest
-- expires | -1} nothing fits.
local function choose_booking(slot_pairs, units_key, fit_key, combos_key, combos_fit_key, asked,
                              party_size, now, own_state)
  local earliest, latest, reserved = nil, nil, false
  -- Per unit: nil when a cell of it is taken in some slot, else the lapsed holds on it.
  local function scan(units)
    local found = {}
    for i = 1, #units do found[i] = {} end
    for _, pair in ipairs(slot_pairs) do
      local states = redis.call('HMGET', pair[1], unpack(units))
      for i = 1, #units do
        local state = states[i]
        if found[i] and state and state ~= own_state then
          local kind, owner, expires = parse_cell(state)
          if kind == 'r' then
            found[i] = nil
            reserved = true
          elseif expires > now then
            found[i] = nil
            if not earliest or expires < earliest then earliest = expires end
            if not latest or expires > latest then latest = expires end
          else
            found[i][#found[i] + 1] = owner
          end
        end
      end
    end
    return found
  end
  -- The tables' lapsed holds, each once; nil when a table is taken somewhere.
  local function all_free(units)
    local found = scan(units)
    local lapsed, seen = {}, {}
    for i = 1, #units do
      if not found[i] then return nil end
      for _, owner in ipairs(found[i]) do
        if not seen[owner] then
          seen[owner] = true
          lapsed[#lapsed + 1] = owner
        end
      end
    end
    return lapsed
  end

  if #asked > 0 then
    local id = asked[1]
    local tables, combo_id = nil, false
    local capacity = redis.call('HGET', units_key, id)
    if capacity then
      tables = {id}
    elseif combos_key then
      local combo = redis.call('HGET', combos_key, id)
      if combo then
        combo = cjson.decode(combo)
        tables, capacity, combo_id = combo.tables, combo.capacity, id
      end
    end
    if not tables then return nil, {12, now, id} end
    if tonumber(capacity) < party_size then return nil, {31, now, -1} end
    local lapsed = all_free(tables)
    if not lapsed then
      if reserved then latest = -1 end
      return nil, {30, now, id, latest or -1}
    end
    return tables, lapsed, combo_id
  end

  local offset = 0
  while true do
    local batch = redis.call('ZRANGEBYSCORE', fit_key, party_size * 1048576, '+inf',
      'LIMIT', offset, 256)
    if #batch == 0 then break end
    local found = scan(batch)
    for i, unit in ipairs(batch) do
      -- Read again alone: its lapsed holds, each once (the same hold may span its slots).
      if found[i] then return {unit}, all_free({unit}), false end
    end
    offset = offset + #batch
  end
  if combos_fit_key then
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', combos_fit_key, party_size * 1048576,
        '+inf')) do
      local combo = cjson.decode(redis.call('HGET', combos_key, id))
      local lapsed = all_free(combo.tables)
      if lapsed then return combo.tables, lapsed, id end
    end
  end
  return nil, {31, now, earliest or -1}
end
