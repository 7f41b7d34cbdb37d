-- include/seat_runs.lua: inlined by holdsvc.scripts into each script that includes it.
-- The free-run index of a seat-map event, all in one hash (keys.seat_index), so that a
-- best-available hold reads one row and O(log rows) tree nodes, never the whole event:
--   size            number of leaves of the tree (a power of two)
--   seated          "<first leaf>|<last leaf>" of the seated rows (map order), "0|-1" if none
--   S:<section>     "<first leaf>|<last leaf>|seated|ga"
--   A:<section>     free places of the section;  A*  free seats of every seated section
--   R:<row key>     "<leaf>|<section>|<bits>": one character per seat, '.' free, 'x' taken
--   L:<leaf>        the row key of that leaf
--   T:<node>        longest free run under that node (node 1 the root, leaf i is size + i)
-- Row keys are "<section>-<row>" (seat ids "<section>-<row>-<n>"); a general-admission
-- section of capacity c is ceil(c / 200) rows "<section>~<r>" of places "<section>~<k>",
-- so its places are cells like seats and every verb that frees cells frees them.
-- A venue without the hash (restaurants, total_seats events) costs one HGET and is left as is.
local SR_GA_ROW = 200

-- The row key and the 1-based position of a unit, or nil for a unit of no seat map.
local function sr_place(unit)
  local section, k = string.match(unit, '^([%w]+)~(%d+)$')
  if section then
    local r = math.floor((tonumber(k) - 1) / SR_GA_ROW)
    return section .. '~' .. r, tonumber(k) - r * SR_GA_ROW
  end
  local row_key, n = string.match(unit, '^([%w]+%-[%w]+)%-(%d+)$')
  if row_key then return row_key, tonumber(n) end
  return nil, nil
end

-- The unit id of position `pos` of a row.
local function sr_unit(row_key, pos)
  local section, r = string.match(row_key, '^([%w]+)~(%d+)$')
  if section then return section .. '~' .. (tonumber(r) * SR_GA_ROW + pos) end
  return row_key .. '-' .. pos
end

local function sr_longest(bits)
  local best = 0
  for run in string.gmatch(bits, '%.+') do
    if #run > best then best = #run end
  end
  return best
end

local function sr_node(idx, node)
  return tonumber(redis.call('HGET', idx, 'T:' .. node) or '0')
end

-- Set a leaf and walk up while a parent's maximum changes: O(log rows) HGET/HSET.
local function sr_tree_set(idx, size, leaf, value)
  local node = size + leaf
  if sr_node(idx, node) == value then return end
  redis.call('HSET', idx, 'T:' .. node, value)
  while node > 1 do
    local sibling = node + 1 - 2 * (node % 2)
    local parent = math.floor(node / 2)
    local best = math.max(value, sr_node(idx, sibling))
    if sr_node(idx, parent) == best then return end
    redis.call('HSET', idx, 'T:' .. parent, best)
    value, node = best, parent
  end
end

-- The first leaf in [lo, hi] whose row has a free run of at least n, or nil.
local function sr_first(idx, size, lo, hi, n)
  local function search(node, node_lo, node_hi)
    if node_hi < lo or node_lo > hi then return nil end
    if sr_node(idx, node) < n then return nil end
    if node_lo == node_hi then return node_lo end
    local mid = math.floor((node_lo + node_hi) / 2)
    return search(2 * node, node_lo, mid) or search(2 * node + 1, mid + 1, node_hi)
  end
  if lo > hi then return nil end
  return search(1, 0, size - 1)
end

local function sr_row(idx, row_key)
  local record = redis.call('HGET', idx, 'R:' .. row_key)
  if not record then return nil end
  local leaf, section, bits = string.match(record, '^(%d+)|([^|]+)|(.*)$')
  return tonumber(leaf), section, bits
end

-- Mark units taken ('x') or free ('.') in their rows, counters and tree. Idempotent: a
-- unit already in that state changes nothing. Units of no seat map are skipped.
local function seat_runs_mark(idx, units, mark)
  if #units == 0 then return end
  local size = redis.call('HGET', idx, 'size')
  if not size then return end
  size = tonumber(size)
  local rows, order = {}, {}
  for _, unit in ipairs(units) do
    local row_key, pos = sr_place(unit)
    if row_key then
      if not rows[row_key] then
        rows[row_key] = {}
        order[#order + 1] = row_key
      end
      table.insert(rows[row_key], pos)
    end
  end
  local to, from, step = string.byte(mark), string.byte(mark == 'x' and '.' or 'x'), 1
  if mark == 'x' then step = -1 end
  for _, row_key in ipairs(order) do
    local leaf, section, bits = sr_row(idx, row_key)
    if leaf then
      local chars = { string.byte(bits, 1, -1) }
      local changed = 0
      for _, pos in ipairs(rows[row_key]) do
        if chars[pos] == from then
          chars[pos] = to
          changed = changed + 1
        end
      end
      if changed > 0 then
        bits = string.char(unpack(chars))
        redis.call('HSET', idx, 'R:' .. row_key, leaf .. '|' .. section .. '|' .. bits)
        redis.call('HINCRBY', idx, 'A:' .. section, step * changed)
        if not string.find(row_key, '~', 1, true) then
          redis.call('HINCRBY', idx, 'A*', step * changed)
        end
        sr_tree_set(idx, size, leaf, sr_longest(bits))
      end
    end
  end
end

-- Called by every script that claims cells, with the units it claimed.
local function seat_runs_taken(idx, units) seat_runs_mark(idx, units, 'x') end
-- Called by every script that frees cells, with the units it freed.
local function seat_runs_freed(idx, units) seat_runs_mark(idx, units, '.') end

-- The units of `units` whose cell in `cells_key` is `state` or starts with `prefix`: what a
-- freeing step is about to free (call it before the cells are deleted).
local function seat_runs_owned(cells_key, units, prefix)
  local owned = {}
  if #units == 0 then return owned end
  local states = redis.call('HMGET', cells_key, unpack(units))
  for i, unit in ipairs(units) do
    local state = states[i]
    if state and string.sub(state, 1, #prefix) == prefix then owned[#owned + 1] = unit end
  end
  return owned
end

-- The start of the best block of n free seats in a row (bits), or nil: a block that leaves
-- no single free seat alone next to it first, then the one nearest the row's middle, then
-- the lower numbers.
local function sr_block(bits, n)
  local m = #bits
  local best, best_alone, best_distance = nil, nil, nil
  local from = 1
  while true do
    local s, e = string.find(bits, '%.+', from)
    if not s then break end
    for a = s, e - n + 1 do
      local alone = 0
      if a - s == 1 or e - (a + n - 1) == 1 then alone = 1 end
      -- Twice the distance between the block's centre and the row's, in whole numbers.
      local distance = math.abs(2 * a + n - 1 - (m + 1))
      if not best or alone < best_alone or (alone == best_alone and distance < best_distance) then
        best, best_alone, best_distance = a, alone, distance
      end
    end
    from = e + 1
  end
  return best
end

-- Choose `count` free places of a seat-map event: in `section` ('' = every seated section
-- in map order). Returns the units, or nil and a status: 19 SECTION_NOT_FOUND,
-- 32 NOT_ENOUGH_SEATS, 46 NOT_ENOUGH_TOGETHER. Reads the free count, O(log rows) tree nodes
-- and the rows it takes from; nothing else.
local function seat_runs_pick(idx, section, count, together)
  local size = tonumber(redis.call('HGET', idx, 'size'))
  local range, free, kind
  if section == '' then
    range = redis.call('HGET', idx, 'seated')
    free = tonumber(redis.call('HGET', idx, 'A*') or '0')
    kind = 'seated'
  else
    local info = redis.call('HGET', idx, 'S:' .. section)
    if not info then return nil, 19 end
    local lo, hi, k = string.match(info, '^(%d+)|(%d+)|(%a+)$')
    range, kind = lo .. '|' .. hi, k
    free = tonumber(redis.call('HGET', idx, 'A:' .. section) or '0')
  end
  if free < count then return nil, 32 end
  local lo, hi = string.match(range, '^(%d+)|(%-?%d+)$')
  lo, hi = tonumber(lo), tonumber(hi)
  if kind == 'seated' then
    local leaf = sr_first(idx, size, lo, hi, count)
    if leaf then
      local row_key = redis.call('HGET', idx, 'L:' .. leaf)
      local _, _, bits = sr_row(idx, row_key)
      local start = sr_block(bits, count)
      local chosen = {}
      for pos = start, start + count - 1 do chosen[#chosen + 1] = sr_unit(row_key, pos) end
      return chosen
    end
    if together then return nil, 46 end
  end
  -- Apart (or general admission): the free places of the rows in order, lowest first.
  local chosen = {}
  while #chosen < count do
    local leaf = sr_first(idx, size, lo, hi, 1)
    if not leaf then return nil, 32 end
    local row_key = redis.call('HGET', idx, 'L:' .. leaf)
    local _, _, bits = sr_row(idx, row_key)
    for pos = 1, #bits do
      if string.byte(bits, pos) == 46 then
        chosen[#chosen + 1] = sr_unit(row_key, pos)
        if #chosen == count then break end
      end
    end
    lo = leaf + 1
  end
  return chosen
end

-- A best-available choice on a seat-map event, for hold.lua: chosen, {} or nil, error reply.
-- Lapsed holds still count as taken in the index, so they are ended first (a 52 reply): the
-- index then sees their seats free, as every read already does.
local function seat_map_choice(cells_key, held_key, idx, section, count, together, now)
  local lapsed_units = redis.call('ZRANGEBYSCORE', held_key, '-inf', now, 'LIMIT', 0, 64)
  if #lapsed_units > 0 then
    local owners, seen = {}, {}
    local states = redis.call('HMGET', cells_key, unpack(lapsed_units))
    for i = 1, #lapsed_units do
      local state = states[i]
      if state and string.sub(state, 1, 2) == 'h|' then
        local owner = string.sub(state, 3, string.find(state, '|', 3, true) - 1)
        if not seen[owner] then
          seen[owner] = true
          owners[#owners + 1] = owner
        end
      end
    end
    if #owners > 0 then return {}, owners end
  end
  local chosen, status = seat_runs_pick(idx, section, count, together)
  if not chosen then return nil, {status, now, -1} end
  return chosen, {}
end

-- For a freeing script, before it deletes the cells: mark free in the index the units whose
-- cell still starts with `prefix` ('h|<hold>|' or 'r|<reference>'): those it will free.
-- One HEXISTS for a venue without a seat map.
local function seat_runs_release(idx, cells_key, units, prefix)
  if #units == 0 or redis.call('HEXISTS', idx, 'size') == 0 then return end
  seat_runs_freed(idx, seat_runs_owned(cells_key, units, prefix))
end
