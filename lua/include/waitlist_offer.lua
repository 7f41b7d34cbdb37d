-- include/waitlist_offer.lua: inlined by holdsvc.scripts into each script that includes it.
--- @include "booking_cells"
--- @include "cells_json"
--- @include "choose_booking"
--- @include "choose_units"
--- @include "covers"
--- @include "guest_overlap"
--- @include "held_state"
--- @include "seat_runs"
--- @include "waitlist_ended"
-- The waitlist (DESIGN.md invariant 9): a script that frees or ends cells hands them, in the
-- same step, to the oldest waiting entry they can satisfy: at a restaurant with booking rules
-- (DESIGN.md 8, 10) a table or combination for the entry's whole duration, within the covers
-- cap and the guest's other bookings, as a hold would be.
--
-- The waitlist block: the LAST keys and the LAST ARGV of a script that includes this helper.
--   KEYS  12 fixed: venue hash, units hash, units-by-fit zset, slots zset, holds zset, feed
--         stream, waitlist hash (entry id -> JSON), seat index hash (of a seat-map event:
--         offers take best-available blocks from it and keep it in step), combinations hash,
--         combinations-by-fit zset, waitlist slots zset (slot id -> start ms, for each slot
--         with a waiting entry), ended zset (ended entry id -> ended ms);
--         then per slot of spec.slots 6: waiting zset (entry id -> group * 2^32 + seq, the
--         entries not passed over), capped zset (the same for the waiting entries passed over
--         at the cap: marked `capped`), queue zset (waiting entry id -> seq), live zset
--         (waiting and offered entry id -> seq),
--         users hash (user id -> live entry id), covers hash;
--         then per slot of spec.cells 2: cells hash, held zset;
--         then one hold hash per offer id; then per user of spec.users 2: user zset (the
--         cap), guest hash (one booking per guest).
--   ARGV  JSON {"slots": [slot ids], "cells": [slot ids], "offers": [[hold id, token digest]
--         ...], "users": [user ids], "read": the caller read the users heading each need of
--         every slot in "slots"}.
-- A step that frees cells from slot A to slot B may fit entries of every slot starting up to
-- (longest duration - 1) slots before A, through B: their "reach". When a reach slot has
-- waiting entries and the block lacks its keys (or its users were not read), the script
-- answers WAITLIST_KEYS before it writes anything, naming the slots and cells it needs.
-- An entry's need is its party size (restaurants) or its seat count (events); its group is its
-- need, or for an event entry naming a section, the section's place in the map * 1024 + its
-- count: entries of one group of one slot fit the same free cells, so the walk asks best fit
-- once per group.
local WAITLIST_FIXED_KEYS = 12
local WAITLIST_NEED_SCALE = 4294967296

local function waitlist_block()
  local spec = cjson.decode(ARGV[#ARGV])
  local size = WAITLIST_FIXED_KEYS + 6 * #spec.slots + 2 * #spec.cells + #spec.offers
    + 2 * #spec.users
  local first = #KEYS - size + 1
  local wl = {
    first = first, spec = spec,
    venue = KEYS[first], units = KEYS[first + 1], fit = KEYS[first + 2],
    slots = KEYS[first + 3], holds = KEYS[first + 4], feed = KEYS[first + 5],
    entries = KEYS[first + 6], seat_index = KEYS[first + 7], combos = KEYS[first + 8],
    combos_fit = KEYS[first + 9], waiting_slots = KEYS[first + 10], ended = KEYS[first + 11],
    slot = {}, cells = {}, offer_keys = {}, user_keys = {}, guest_keys = {},
  }
  local at = first + WAITLIST_FIXED_KEYS
  for _, slot in ipairs(spec.slots) do
    wl.slot[slot] = {waiting = KEYS[at], capped = KEYS[at + 1], queue = KEYS[at + 2],
      live = KEYS[at + 3], users = KEYS[at + 4], covers = KEYS[at + 5]}
    at = at + 6
  end
  for _, slot in ipairs(spec.cells) do
    wl.cells[slot] = {KEYS[at], KEYS[at + 1]}
    at = at + 2
  end
  for n = 1, #spec.offers do
    wl.offer_keys[n] = KEYS[at]
    at = at + 1
  end
  for _, user in ipairs(spec.users) do
    wl.user_keys[user] = KEYS[at]
    wl.guest_keys[user] = KEYS[at + 1]
    at = at + 2
  end
  return wl
end

-- Where the block's keys start (a script with a variable number of its own keys stops there).
local function waitlist_first_key()
  return waitlist_block().first
end

-- The venue's settings an offer follows, and its booking rules (as lua/hold.lua's caller
-- passes them): kmax is the most grid slots any party's booking spans.
local function waitlist_rules(wl)
  local v = redis.call('HMGET', wl.venue, 'kind', 'max_holds_per_user', 'offer_seconds',
    'durations', 'max_covers_per_slot', 'one_booking_per_guest', 'combinations', 'slot_minutes')
  local rules = {
    kind = v[1], cap = tonumber(v[2] or '0'), offer_ms = (tonumber(v[3]) or 900) * 1000,
    durations = {}, covers_cap = tonumber(v[5] or '0') or 0, one_booking = v[6] == '1',
    combos = (tonumber(v[7] or '0') or 0) > 0, slot_minutes = tonumber(v[8]) or 60, kmax = 1,
  }
  if v[4] and v[4] ~= '' then rules.durations = cjson.decode(v[4]) end
  rules.step = rules.slot_minutes * 60000
  for _, rule in ipairs(rules.durations) do
    local k = math.max(1, math.floor(rule[2] / rules.slot_minutes))
    if k > rules.kmax then rules.kmax = k end
  end
  rules.rich = rules.kind == 'restaurant' and (#rules.durations > 0 or rules.covers_cap > 0
    or rules.one_booking or rules.combos)
  return rules
end

-- How many grid slots a party's booking spans (BookingRules.slot_count).
local function waitlist_span_count(rules, party)
  for _, rule in ipairs(rules.durations) do
    if party <= rule[1] then return math.max(1, math.floor(rule[2] / rules.slot_minutes)) end
  end
  return 1
end

-- The grid slots from `start` on, `count` of them, back to back: their ids (nil when the
-- grid has a gap there).
local function waitlist_span(wl, rules, start, count)
  local found = redis.call('ZRANGEBYSCORE', wl.slots, start, start + (count - 1) * rules.step,
    'WITHSCORES')
  local ids = {}
  for i = 1, #found, 2 do
    if tonumber(found[i + 1]) ~= start + #ids * rules.step then return nil end
    ids[#ids + 1] = found[i]
  end
  if #ids ~= count then return nil end
  return ids
end

-- Before any write: nil when the block holds every key this step may touch, else the
-- WAITLIST_KEYS reply naming the slots and cells it needs. `first`, `last`: the first and
-- last slot the step frees cells of (nil: none, only `also`); `also`: slots whose keys and
-- cells it needs whatever waits (join's and leave's own slot).
local function waitlist_missing(now, first, last, also)
  local wl = waitlist_block()
  -- Nobody waits anywhere in the venue (the usual freeing step): nothing more to read.
  if (not also or #also == 0) and redis.call('ZCARD', wl.waiting_slots) == 0 then
    return nil
  end
  local rules = waitlist_rules(wl)
  local wanted, start_of = {}, {}
  local function want(slot, start)
    if start_of[slot] ~= nil then return end
    start_of[slot] = start
    wanted[#wanted + 1] = slot
  end
  if first then
    local from = tonumber(redis.call('ZSCORE', wl.slots, first))
    local to = tonumber(redis.call('ZSCORE', wl.slots, last))
    if from and to then
      if from > to then from, to = to, from end
      local found = redis.call('ZRANGEBYSCORE', wl.waiting_slots,
        from - (rules.kmax - 1) * rules.step, to, 'WITHSCORES')
      for i = 1, #found, 2 do want(found[i], tonumber(found[i + 1])) end
    end
  end
  local waiting = #wanted > 0
  for _, slot in ipairs(also or {}) do
    -- A slot outside the grid needs its waitlist keys only (false: no cells).
    want(slot, tonumber(redis.call('ZSCORE', wl.slots, slot)) or false)
  end
  local missing = waiting and not wl.spec.read
  local cells, cell_seen = {}, {}
  for _, slot in ipairs(wanted) do
    if not wl.slot[slot] then missing = true end
    local start = start_of[slot]
    if start then
      local found = redis.call('ZRANGEBYSCORE', wl.slots, start,
        start + (rules.kmax - 1) * rules.step)
      for _, cell in ipairs(found) do
        if not cell_seen[cell] then
          cell_seen[cell] = true
          cells[#cells + 1] = cell
          if not wl.cells[cell] then missing = true end
        end
      end
    end
  end
  if not missing then return nil end
  return {57, now, cjson.encode(wanted), cjson.encode(cells)}
end

-- The slot's waitlist keeps its place among the slots with waiting entries (or leaves it).
local function waitlist_slot_sync(wl, slot)
  local keys = wl.slot[slot]
  if redis.call('ZCARD', keys.waiting) + redis.call('ZCARD', keys.capped) == 0 then
    redis.call('ZREM', wl.waiting_slots, slot)
    return
  end
  local start = redis.call('ZSCORE', wl.slots, slot)
  if start then redis.call('ZADD', wl.waiting_slots, start, slot) end
end

local function waitlist_entry(wl, entry_id)
  local text = redis.call('HGET', wl.entries, entry_id)
  if not text then return nil end
  return cjson.decode(text)
end

-- An entry leaves the live lists (offered -> confirmed | expired, or any -> left).
local function waitlist_settle(wl, entry, status, now)
  local keys = wl.slot[entry.slot]
  entry.status = status
  entry.ended = now
  redis.call('HSET', wl.entries, entry.id, cjson.encode(entry))
  waitlist_ended(wl.ended, wl.entries, entry.id, now)
  redis.call('ZREM', keys.waiting, entry.id)
  redis.call('ZREM', keys.capped, entry.id)
  redis.call('ZREM', keys.queue, entry.id)
  redis.call('ZREM', keys.live, entry.id)
  if redis.call('HGET', keys.users, entry.user) == entry.id then
    redis.call('HDEL', keys.users, entry.user)
  end
  waitlist_slot_sync(wl, entry.slot)
end

-- The hold that ended was an offer: its entry ends with it (confirmed, or expired when it
-- lapsed or was released). `hold_key`: the ended hold's hash.
local function waitlist_hold_ended(wl, hold_key, status, now)
  local entry_id = redis.call('HGET', hold_key, 'wl')
  if not entry_id then return end
  local entry = waitlist_entry(wl, entry_id)
  if entry and entry.status == 'offered' and wl.slot[entry.slot] then
    waitlist_settle(wl, entry, status, now)
  end
end

-- The user's live held units, pruned by Redis time (as hold.lua counts them).
local function waitlist_held_units(user_key, now)
  redis.call('ZREMRANGEBYSCORE', user_key, '-inf', now)
  local held = 0
  for _, member in ipairs(redis.call('ZRANGE', user_key, 0, -1)) do
    held = held + tonumber(string.match(member, '|(%d+)$'))
  end
  return held
end

-- What a hold of `need` in the slot (starting at `start`) would get now: the units, and for
-- a restaurant with rules the span's slot ids and {cells, held} pairs and the combination;
-- nil when nothing fits now (lapsed cells are the sweeper's to end first: its expiry offers
-- them again).
local function waitlist_choice(wl, rules, slot, start, need, section, now)
  local pair = wl.cells[slot]
  if not pair then return nil end
  local chosen, lapsed
  if rules.kind == 'event' then
    if redis.call('HEXISTS', wl.seat_index, 'size') == 1 then
      -- A seat map: the block a best-available hold would get (together; the entry's
      -- section, else any seated one).
      chosen, lapsed = seat_map_choice(pair[1], pair[2], wl.seat_index, section, need, true,
        now)
    else
      chosen, lapsed = choose_units(pair[1], wl.units, wl.fit, {}, 1, need, now, nil, 'event')
    end
    if not chosen or #lapsed > 0 then return nil end
    return {units = chosen, slots = {slot}, pairs = {pair}}
  end
  if not rules.rich then
    chosen, lapsed = choose_units(pair[1], wl.units, wl.fit, {}, need, 1, now, nil,
      'restaurant')
    if not chosen or #lapsed > 0 then return nil end
    return {units = chosen, slots = {slot}, pairs = {pair}}
  end
  -- The covers cap counts covers starting in the entry's slot, as for a hold.
  if rules.covers_cap > 0
      and covers(wl.slot[slot].covers, now, nil) + need > rules.covers_cap then
    return nil
  end
  local ids = waitlist_span(wl, rules, start, waitlist_span_count(rules, need))
  if not ids then return nil end
  local slot_pairs = {}
  for i, id in ipairs(ids) do
    if not wl.cells[id] then return nil end
    slot_pairs[i] = wl.cells[id]
  end
  local combos_key, combos_fit_key = nil, nil
  if rules.combos then combos_key, combos_fit_key = wl.combos, wl.combos_fit end
  local combo
  chosen, lapsed, combo = choose_booking(slot_pairs, wl.units, wl.fit, combos_key,
    combos_fit_key, {}, need, now, nil)
  if not chosen or #lapsed > 0 then return nil end
  return {units = chosen, slots = ids, pairs = slot_pairs, combo = combo or '',
    starts = start, stops = start + #ids * rules.step}
end

-- Whether the entry's user may take `choice` now: under the user cap and, with one booking
-- per guest, no other booking of the user's overlapping it. nil: the caller did not name the
-- user (joined since it read).
local function waitlist_user_may(wl, rules, entry, choice, now)
  local user_key = wl.user_keys[entry.user]
  if not user_key then return nil end
  if waitlist_held_units(user_key, now) + #choice.units > rules.cap then return false end
  if rules.rich and rules.one_booking
      and guest_overlap(wl.guest_keys[entry.user], choice.starts, choice.stops, now, nil) then
    return false
  end
  return true
end

-- An entry passed over (its user at the cap, or booked elsewhere then) moves from the waiting
-- zset to the capped one: later walks pass it without reading it, unless its user is named.
local function waitlist_pass_over(wl, keys, entry, score, now)
  entry.capped = now
  redis.call('HSET', wl.entries, entry.id, cjson.encode(entry))
  redis.call('ZREM', keys.waiting, entry.id)
  redis.call('ZADD', keys.capped, score, entry.id)
end

-- The passed-over entries of the slot whose users the caller named, by group, oldest first:
-- the only ones of the capped zset a walk looks at (so it costs the users named, not the
-- entries passed over).
local function waitlist_named_capped(wl, keys)
  local by_group = {}
  for _, user in ipairs(wl.spec.users) do
    local entry_id = redis.call('HGET', keys.users, user)
    local score = entry_id and redis.call('ZSCORE', keys.capped, entry_id)
    if score then
      score = tonumber(score)
      local group = math.floor(score / WAITLIST_NEED_SCALE)
      by_group[group] = by_group[group] or {}
      table.insert(by_group[group], {id = entry_id, score = score})
    end
  end
  for _, list in pairs(by_group) do
    table.sort(list, function(x, y) return x.score < y.score end)
  end
  return by_group
end

-- What the head entry of a group asks: every entry of the group asks the same.
local function waitlist_group_choice(wl, rules, slot, start, entry_id, now)
  local first = waitlist_entry(wl, entry_id)
  if not first then return nil end
  -- A section JSON null (cjson.null) or absent: any seated section.
  local section = first.section
  if type(section) ~= 'string' then section = '' end
  return waitlist_choice(wl, rules, slot, start, first.need, section, now)
end

-- The oldest waiting entry of one slot the free cells satisfy, with what it would get.
local function waitlist_pick(wl, rules, slot, start, now)
  local keys = wl.slot[slot]
  local named = waitlist_named_capped(wl, keys)
  -- The groups present: those of the waiting zset, and those of named passed-over entries.
  local groups, seen = {}, {}
  local floor = 0
  while true do
    local head = redis.call('ZRANGEBYSCORE', keys.waiting, floor, '+inf', 'WITHSCORES',
      'LIMIT', 0, 1)
    if #head == 0 then break end
    local group = math.floor(tonumber(head[2]) / WAITLIST_NEED_SCALE)
    floor = (group + 1) * WAITLIST_NEED_SCALE
    groups[#groups + 1] = {group = group, head = head[1]}
    seen[group] = true
  end
  for group, list in pairs(named) do
    if not seen[group] then groups[#groups + 1] = {group = group, head = list[1].id} end
  end
  local best = nil
  for _, found in ipairs(groups) do
    local choice = waitlist_group_choice(wl, rules, slot, start, found.head, now)
    if choice then
      local base = found.group * WAITLIST_NEED_SCALE
      local ceiling = base + WAITLIST_NEED_SCALE - 1
      local capped = named[found.group] or {}
      local next_capped = 1
      -- Paged by score (not offset), so each page costs the same however deep the walk.
      local from = base
      local page, at = {}, 1
      local done = false
      while not done do
        if at > #page then
          page = redis.call('ZRANGEBYSCORE', keys.waiting, from, ceiling, 'WITHSCORES',
            'LIMIT', 0, 64)
          at = 1
          if #page > 0 then from = '(' .. page[#page] end
        end
        -- The older of the next waiting entry and the next named passed-over one.
        local entry_id, score, was_capped
        local waiting_score = page[at + 1] and tonumber(page[at + 1])
        local capped_next = capped[next_capped]
        if capped_next and (not waiting_score or capped_next.score < waiting_score) then
          entry_id, score, was_capped = capped_next.id, capped_next.score, true
          next_capped = next_capped + 1
        elseif waiting_score then
          entry_id, score, was_capped = page[at], waiting_score, false
          at = at + 2
        else
          break
        end
        local seq = score - base
        -- Older entries of another group already won: none of this group can beat them.
        if best and seq > best.seq then break end
        local entry = waitlist_entry(wl, entry_id)
        local may = entry and waitlist_user_may(wl, rules, entry, choice, now)
        -- A user of the waiting zset the caller did not name joined since it read: this
        -- group waits for the next step.
        if may == nil and not was_capped then done = true
        elseif may then
          best = {entry = entry, choice = choice, seq = seq}
          done = true
        elseif may == false and not was_capped then
          -- At the user cap (or booked elsewhere then): passed over, not blocking the entries
          -- behind it; the next freeing step of the slot asks again if its user is named.
          waitlist_pass_over(wl, keys, entry, score, now)
        end
      end
    end
  end
  return best
end

-- Give the entry its offer: a hold on the chosen cells, in every slot of its span.
local function waitlist_give(wl, rules, slot, best, offer, hold_key, now, feed_maxlen, actor)
  local hold_id, digest = offer[1], offer[2]
  local entry, choice = best.entry, best.choice
  local expires = now + rules.offer_ms
  local state = held_state(hold_id, expires)
  -- The cells go from free to this offer inside the step that freed them: nobody else
  -- ever sees them free.
  for _, pair in ipairs(choice.pairs) do
    for _, unit in ipairs(choice.units) do
      redis.call('HSET', pair[1], unit, state)
      redis.call('ZADD', pair[2], expires, unit)
    end
  end
  -- A seat map's free-run index follows the cells in this same step.
  if rules.kind == 'event' then seat_runs_taken(wl.seat_index, choice.units) end
  local party = entry.need
  if rules.kind == 'event' then party = 1 end
  -- 'ends' = 'expires': an offer lasts offer_seconds and no refresh extends it.
  redis.call('HSET', hold_key, 'user', entry.user, 'digest', digest, 'slot', slot,
    'units', cjson.encode(choice.units), 'n', tostring(#choice.units),
    'party', tostring(party), 'created', string.format('%d', now),
    'expires', string.format('%d', expires), 'ends', string.format('%d', expires),
    'refreshes', '0', 'status', 'held', 'wl', entry.id)
  if rules.rich then
    -- The rule indexes count the offer as they count a hold (lua/hold.lua's rich path).
    local idx = ''
    if rules.covers_cap > 0 then
      idx = idx .. 'c'
      redis.call('HSET', wl.slot[slot].covers, 'h|' .. hold_id,
        party .. '|' .. string.format('%d', expires))
    end
    if rules.one_booking then
      idx = idx .. 'g'
      redis.call('HSET', wl.guest_keys[entry.user], 'h|' .. hold_id,
        string.format('%d|%d|%d', choice.starts, choice.stops, expires))
    end
    redis.call('HSET', hold_key, 'starts', string.format('%d', choice.starts),
      'stops', string.format('%d', choice.stops), 'idx', idx, 'combo', choice.combo)
    if #choice.slots > 1 then redis.call('HSET', hold_key, 'slots', cjson.encode(choice.slots)) end
  end
  redis.call('ZADD', wl.holds, expires, hold_id)
  redis.call('ZADD', wl.user_keys[entry.user], expires, hold_id .. '|' .. #choice.units)
  local keys = wl.slot[slot]
  entry.status = 'offered'
  entry.hold = hold_id
  entry.offered = now
  redis.call('HSET', wl.entries, entry.id, cjson.encode(entry))
  redis.call('ZREM', keys.waiting, entry.id)
  redis.call('ZREM', keys.capped, entry.id)
  redis.call('ZREM', keys.queue, entry.id)
  waitlist_slot_sync(wl, slot)
  redis.call('XADD', wl.feed, 'MAXLEN', '~', feed_maxlen, '*',
    'event', 'offered', 'at', string.format('%d', now), 'hold', hold_id, 'user', entry.user,
    'ref', '', 'cells', booking_cells(choice.slots, choice.units), 'actor', actor or '',
    'wl', entry.id)
end

-- Offer free cells to waiting entries of the block's slots, oldest first among those that
-- fit, one hold per offer id the caller brought. Returns how many offers were made.
local function waitlist_offer(wl, now, feed_maxlen, actor)
  if #wl.spec.offers == 0 then return 0 end
  local rules = nil
  local open = {}
  for _, slot in ipairs(wl.spec.slots) do
    local keys = wl.slot[slot]
    if redis.call('ZCARD', keys.waiting) + redis.call('ZCARD', keys.capped) > 0 then
      local start = tonumber(redis.call('ZSCORE', wl.slots, slot))
      if start and start > now then
        open[#open + 1] = {slot = slot, start = start}
      else
        -- A slot that has started (or left the grid) takes no guests: nothing to offer.
        redis.call('ZREM', wl.waiting_slots, slot)
      end
    end
  end
  if #open == 0 then return 0 end
  rules = waitlist_rules(wl)
  local made = 0
  for n, offer in ipairs(wl.spec.offers) do
    -- The oldest entry that fits, whichever slot of the reach it waits in.
    local best, best_slot = nil, nil
    for _, slot in ipairs(open) do
      local found = waitlist_pick(wl, rules, slot.slot, slot.start, now)
      if found and (not best or found.seq < best.seq) then best, best_slot = found, slot.slot end
    end
    if not best then break end
    waitlist_give(wl, rules, best_slot, best, offer, wl.offer_keys[n], now, feed_maxlen, actor)
    made = made + 1
  end
  return made
end

-- The one call of a script that freed cells: an ended offer (the hold in `hold_key`, nil
-- when no hold ended) makes its entry `expired`, then the free cells are offered to the
-- waitlist.
local function waitlist_after_free(now, feed_maxlen, hold_key)
  local wl = waitlist_block()
  if hold_key then waitlist_hold_ended(wl, hold_key, 'expired', now) end
  return waitlist_offer(wl, now, feed_maxlen, nil)
end
