-- include/waitlist_offer.lua: inlined by holdsvc.scripts into each script that includes it.
--- @include "cells_json"
--- @include "choose_units"
--- @include "held_state"
--- @include "seat_runs"
-- The waitlist of one slot (DESIGN.md invariant 9): a script that frees or ends cells hands
-- them, in the same step, to the oldest waiting entry they can satisfy.
--
-- The waitlist block: the LAST keys and the LAST ARGV of a script that includes this helper.
--   KEYS  venue hash, units hash, units-by-fit zset, slots zset, cells hash (of the slot),
--         held zset (of the slot), holds zset, feed stream, waitlist hash (entry id -> JSON),
--         waiting zset (of the slot: entry id -> need * 2^32 + seq), queue zset (of the slot:
--         waiting entry id -> seq), live zset (of the slot: waiting and offered entry id ->
--         seq), users hash (of the slot: user id -> live entry id), seat index hash (of a
--         seat-map event: offers take best-available blocks from it and keep it in step);
--         then one hold hash per offer id, then one user zset per user id (the cap).
--   ARGV  '' (no block: nothing to offer) or JSON {"slot", "offers": [[hold id, token
--         digest]...], "users": [user ids]}: the caller read which users head each need.
-- An entry's need is its party size (restaurants) or its seat count (events): entries of one
-- need fit the same free cells, so the walk asks best fit once per need and skips the rest.
local WAITLIST_FIXED_KEYS = 14
local WAITLIST_NEED_SCALE = 4294967296

local function waitlist_block()
  local text = ARGV[#ARGV]
  if text == nil or text == '' then return {first = #KEYS + 1} end
  local spec = cjson.decode(text)
  local first = #KEYS - WAITLIST_FIXED_KEYS - #spec.offers - #spec.users + 1
  local wl = {
    first = first, spec = spec, slot = spec.slot,
    venue = KEYS[first], units = KEYS[first + 1], fit = KEYS[first + 2], slots = KEYS[first + 3],
    cells = KEYS[first + 4], held = KEYS[first + 5], holds = KEYS[first + 6],
    feed = KEYS[first + 7], entries = KEYS[first + 8], waiting = KEYS[first + 9],
    queue = KEYS[first + 10], live = KEYS[first + 11], users = KEYS[first + 12],
    seat_index = KEYS[first + 13],
    user_keys = {},
  }
  for i, user in ipairs(spec.users) do
    wl.user_keys[user] = KEYS[first + WAITLIST_FIXED_KEYS + #spec.offers + i - 1]
  end
  return wl
end

-- Where the block's keys start (a script with a variable number of its own keys stops there).
local function waitlist_first_key()
  return waitlist_block().first
end

local function waitlist_entry(wl, entry_id)
  local text = redis.call('HGET', wl.entries, entry_id)
  if not text then return nil end
  return cjson.decode(text)
end

-- An entry leaves the live lists (offered -> confirmed | expired, or any -> left).
local function waitlist_settle(wl, entry, status, now)
  entry.status = status
  entry.ended = now
  redis.call('HSET', wl.entries, entry.id, cjson.encode(entry))
  redis.call('ZREM', wl.waiting, entry.id)
  redis.call('ZREM', wl.queue, entry.id)
  redis.call('ZREM', wl.live, entry.id)
  if redis.call('HGET', wl.users, entry.user) == entry.id then
    redis.call('HDEL', wl.users, entry.user)
  end
end

-- The hold that ended was an offer: its entry ends with it (confirmed, or expired when it
-- lapsed or was released). `hold_key`: the ended hold's hash.
local function waitlist_hold_ended(wl, hold_key, status, now)
  if not wl.entries then return end
  local entry_id = redis.call('HGET', hold_key, 'wl')
  if not entry_id then return end
  local entry = waitlist_entry(wl, entry_id)
  if entry and entry.status == 'offered' then waitlist_settle(wl, entry, status, now) end
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

-- The oldest waiting entry the free cells satisfy, with the units best fit chose for it.
local function waitlist_pick(wl, kind, cap, now)
  local best = nil
  local floor = 0
  while true do
    local head = redis.call('ZRANGEBYSCORE', wl.waiting, floor, '+inf', 'WITHSCORES',
      'LIMIT', 0, 1)
    if #head == 0 then break end
    local need = math.floor(tonumber(head[2]) / WAITLIST_NEED_SCALE)
    local base = need * WAITLIST_NEED_SCALE
    floor = base + WAITLIST_NEED_SCALE
    local party, count = need, 1
    if kind == 'event' then party, count = 1, need end
    -- The same best fit a hold gets; lapsed cells are the sweeper's to end first (its
    -- expiry offers them again), so a choice that needs one is no fit now.
    local chosen, lapsed
    if kind == 'event' and redis.call('HEXISTS', wl.seat_index, 'size') == 1 then
      -- A seat map: the block a best-available hold would get (together, any seated section).
      chosen, lapsed = seat_map_choice(wl.cells, wl.held, wl.seat_index, '', count, true, now)
    else
      chosen, lapsed = choose_units(wl.cells, wl.units, wl.fit, {}, party, count, now, nil,
        kind)
    end
    if chosen and #lapsed == 0 then
      -- Paged by score (not offset), so each page costs the same however deep the walk.
      local from = base
      local done = false
      while not done do
        local batch = redis.call('ZRANGEBYSCORE', wl.waiting, from, floor - 1, 'WITHSCORES',
          'LIMIT', 0, 64)
        if #batch == 0 then break end
        from = '(' .. batch[#batch]
        for i = 1, #batch, 2 do
          local seq = tonumber(batch[i + 1]) - base
          -- Older entries of another need already won: none of this need can beat them.
          if best and seq > best.seq then done = true break end
          local entry = waitlist_entry(wl, batch[i])
          local user_key = entry and wl.user_keys[entry.user]
          -- A user the caller did not name: one passed over at the cap stays passed over; any
          -- other joined since the caller read, and this need waits for the next step.
          if not user_key and not (entry and entry.capped) then done = true break end
          if user_key and waitlist_held_units(user_key, now) + #chosen <= cap then
            best = {entry = entry, units = chosen, seq = seq, user_key = user_key}
            done = true
            break
          end
          -- At the user cap: skipped, not blocking the entries behind it. The mark says so
          -- (the audit's invariant 9): the next freeing step of the slot asks again.
          if user_key and not entry.capped then
            entry.capped = now
            redis.call('HSET', wl.entries, entry.id, cjson.encode(entry))
          end
        end
      end
    end
  end
  return best
end

-- Offer free cells of the slot to waiting entries, oldest first among those that fit, one
-- hold per offer id the caller brought. Returns how many offers were made.
local function waitlist_offer(wl, now, feed_maxlen, actor)
  if not wl.entries or #wl.spec.offers == 0 then return 0 end
  if redis.call('ZCARD', wl.waiting) == 0 then return 0 end
  local starts = tonumber(redis.call('ZSCORE', wl.slots, wl.slot))
  -- A slot that has started (or left the grid) takes no guests: nothing to offer.
  if not starts or starts <= now then return 0 end
  local venue = redis.call('HMGET', wl.venue, 'kind', 'max_holds_per_user', 'offer_seconds',
    'durations', 'max_covers_per_slot', 'one_booking_per_guest', 'combinations')
  -- A restaurant with booking rules (durations, pacing, one booking, combinations) takes no
  -- waitlist: an offer of one slot's table could break them (its join is refused as well).
  if venue[1] == 'restaurant' and ((venue[4] or '') ~= '' or tonumber(venue[5] or '0') > 0
      or venue[6] == '1' or tonumber(venue[7] or '0') > 0) then
    return 0
  end
  local cap = tonumber(venue[2])
  local offer_ms = (tonumber(venue[3]) or 900) * 1000
  local made = 0
  for n, offer in ipairs(wl.spec.offers) do
    local best = waitlist_pick(wl, venue[1], cap, now)
    if not best then break end
    local hold_id, digest = offer[1], offer[2]
    local hold_key = KEYS[wl.first + WAITLIST_FIXED_KEYS + n - 1]
    local entry = best.entry
    local expires = now + offer_ms
    local state = held_state(hold_id, expires)
    -- The cells go from free to this offer inside the step that freed them: nobody else
    -- ever sees them free.
    for _, unit in ipairs(best.units) do
      redis.call('HSET', wl.cells, unit, state)
      redis.call('ZADD', wl.held, expires, unit)
    end
    -- A seat map's free-run index follows the cells in this same step.
    if venue[1] == 'event' then seat_runs_taken(wl.seat_index, best.units) end
    local units_json = cjson.encode(best.units)
    local party = entry.need
    if venue[1] == 'event' then party = 1 end
    -- 'ends' = 'expires': an offer lasts offer_seconds and no refresh extends it.
    redis.call('HSET', hold_key, 'user', entry.user, 'digest', digest, 'slot', wl.slot,
      'units', units_json, 'n', tostring(#best.units), 'party', tostring(party),
      'created', string.format('%d', now), 'expires', string.format('%d', expires),
      'ends', string.format('%d', expires), 'refreshes', '0', 'status', 'held', 'wl', entry.id)
    redis.call('ZADD', wl.holds, expires, hold_id)
    redis.call('ZADD', best.user_key, expires, hold_id .. '|' .. #best.units)
    entry.status = 'offered'
    entry.hold = hold_id
    entry.offered = now
    redis.call('HSET', wl.entries, entry.id, cjson.encode(entry))
    redis.call('ZREM', wl.waiting, entry.id)
    redis.call('ZREM', wl.queue, entry.id)
    redis.call('XADD', wl.feed, 'MAXLEN', '~', feed_maxlen, '*',
      'event', 'offered', 'at', string.format('%d', now), 'hold', hold_id, 'user', entry.user,
      'ref', '', 'cells', cells_json(wl.slot, best.units), 'actor', actor or '',
      'wl', entry.id)
    made = made + 1
  end
  return made
end

-- The one call of a script that freed cells of the block's slot: an ended offer (the hold in
-- `hold_key`, nil when no hold ended) makes its entry `expired`, then the free cells are
-- offered to the waitlist.
local function waitlist_after_free(now, feed_maxlen, hold_key)
  local wl = waitlist_block()
  if hold_key then waitlist_hold_ended(wl, hold_key, 'expired', now) end
  return waitlist_offer(wl, now, feed_maxlen, nil)
end
