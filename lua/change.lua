--[[
change.lua: change a reservation in one step: contact and staff fields, party size, and/or a
move to another slot and/or table (claim the new cell, free the old one). A refusal changes
nothing. Every rule about the reservation's state is checked here, on what this script reads:
who may change it (its manage token, or staff), its status, its cells and its party. Only
what the keys were built from (the slot when it moves, the phone when it changes) can be stale;
then nothing changes and the caller reads again (STALE), which only ever follows a change of
this reservation that committed in between.
A venue with durations, combinations, pacing or one booking per guest, or a reservation made
under them ("rich": ARGV[13..17] given, told by #ARGV since the waitlist block's JSON is
always last): the booking's k slots are freed and the target's claimed
together (DESIGN.md 8); the covers cap is checked at the new start, and a guest's change
against their other bookings (DESIGN.md 10). A party size that changes the duration without a
move re-seats the booking by best fit in its own slot (its own cells count as free).

Input:
  KEYS[1]  reservation hash
  KEYS[2]  cells hash          of the slot the caller read (used only when it moves)
  KEYS[3]  cells hash          of the target slot (the same key when it does not move)
  KEYS[4]  slots zset          slot id -> start ms
  KEYS[5]  units hash          unit id -> capacity
  KEYS[6]  units-by-fit zset   unit id -> capacity * 2^20 + sequence
  KEYS[7]  by-start zset       reference -> slot start ms
  KEYS[8]  by-phone set        of the phone the caller read (used only when it changes)
  KEYS[9]  by-phone set        of the new phone (the same key when it does not change)
  KEYS[10] venue hash          kind, slot_minutes, bookings_open, min_notice_minutes,
                               max_days_ahead
  KEYS[11] feed stream
  KEYS[12] combinations hash   combination id -> JSON {tables, capacity}        (rich only)
  KEYS[13] combinations-by-fit zset                                             (rich only)
  KEYS[14] covers hash         of the slot the caller read                      (rich only)
  KEYS[15] covers hash         of the target slot                               (rich only)
  KEYS[16] guest hash          of its user                                      (rich only)
  KEYS[17] guest hash          of the phone the caller read                     (rich only)
  KEYS[18] guest hash          of the new phone (the same key when unchanged)   (rich only)
  KEYS[19], ...                cells hash, held zset of each following slot it spans now,
                               then of each following slot of the target        (rich only)
  KEYS[n..]                    the waitlist block of the slot the caller read
                               (lua/include/waitlist_offer.lua), last: venue hash, units
                               hash, units-by-fit zset, slots zset, holds zset, feed stream,
                               waitlist hash, seat index hash, combinations hash,
                               combinations-by-fit zset, waitlist slots zset, ended zset;
                               per slot of its spec: waiting, capped, queue, live zsets,
                               users hash, covers hash; per cell slot: cells hash, held
                               zset; per offer: hold hash; per user: user zset, guest hash
  ARGV[1]  reference
  ARGV[2]  expected slot       what the caller read (KEYS[2], and KEYS[3] when no target slot)
  ARGV[3]  expected phone      what the caller read (KEYS[8])
  ARGV[4]  fields              JSON object of stored fields to set (strings); a 'status'
                               (staff only: confirmed, seated, completed, no_show) is
                               checked here: no_show only once the reservation started
  ARGV[5]  move                '1': claim a cell in the target slot, '0': stay
  ARGV[6]  target slot
  ARGV[7]  target unit         '' = best fit
  ARGV[8]  party size          '' = unchanged
  ARGV[9]  actor               staff: 'admin' or the staff token's id (skips pause/past/
                               window; may change no_show, completed; written to the feed);
                               '' = the guest
  ARGV[10] manage digest       sha256 hex of the presented Manage-Token; '' = none
  ARGV[11] feed maxlen
  ARGV[12] rules version       the venue's rules_version the caller built its request from
  ARGV[13] target slot ids     JSON array of the k slots it will span (rich only)
  ARGV[14] step ms             slot_minutes in ms
  ARGV[15] covers cap          max_covers_per_slot (0: off)
  ARGV[16] one booking         '1': one booking per guest
  ARGV[17] combinations        '1': the venue has combinations
  ARGV[last]                   the waitlist block's JSON
Output: {code, now ms, ...}
  0  OK                      changed ('changed' entry)
  11 SLOT_NOT_FOUND
  12 UNIT_NOT_FOUND          unit id
  14 RESERVATION_NOT_FOUND
  20 FORBIDDEN               a guest without its manage token, or changing a reservation
                             that only staff may change (no_show, completed)
  30 UNIT_UNAVAILABLE        unit id, latest expires ms of a blocking hold (-1: reserved)
  31 NO_TABLE_AVAILABLE      earliest expires ms of a blocking hold (-1: none)
  34 BOOKINGS_PAUSED         (guest moves only)
  35 SLOT_IN_PAST            (guest moves only)
  36 OUTSIDE_BOOKING_WINDOW  (guest moves only)
  37 RESERVATION_CANCELLED
  43 NOT_STARTED             starts ms (a no_show before the reservation's start)
  47 COVERS_LIMIT_REACHED    covers already starting in the target slot, the cap
  48 OVERLAPPING_BOOKING     (guest changes only) the guest has another booking then
  52 NEEDS_SWEEP             hold ids of lapsed holds on the target cell (sweep, then retry)
  54 STALE                   it moved, or its phone changed, since the caller read it (and
                             this change needs that key), or the venue's rules changed: read,
                             retry
  57 WAITLIST_KEYS           waiting entries the freed cells may fit need keys the block
                             lacks: slot ids JSON, cell slot ids JSON; nothing changed
]]

--- @include "booking_refusal"
--- @include "booking_slots"
--- @include "choose_booking"
--- @include "choose_units"
--- @include "covers"
--- @include "guest_overlap"
--- @include "feed_append"
--- @include "now_ms"
--- @include "record_units"
--- @include "slot_keys"
--- @include "span_start"
--- @include "sweep_reply"
--- @include "waitlist_offer"

local reference = ARGV[1]
local expected_slot = ARGV[2]
local expected_phone = ARGV[3]
local fields = cjson.decode(ARGV[4])
local move = ARGV[5] == '1'
local target_slot = ARGV[6]
local target_unit = ARGV[7]
local new_party = ARGV[8]
local actor = ARGV[9]
local as_staff = actor ~= ''
local presented_digest = ARGV[10]
local feed_maxlen = tonumber(ARGV[11])
local now = now_ms()

local res = redis.call('HMGET', KEYS[1], 'status', 'slot', 'units', 'party', 'phone', 'hold',
  'user', 'digest', 'slots', 'idx', 'combo', 'starts', 'ends')
if not res[1] then return {14, now} end
-- Digests of random tokens; Lua interns every string, so == takes the same time for any two.
if not as_staff and (presented_digest == '' or presented_digest ~= res[8]) then
  return {20, now}
end
if res[1] == 'cancelled' then return {37, now} end
-- The status read here decides: a staff mark (no_show, completed) that committed first wins.
if res[1] ~= 'confirmed' and not as_staff then return {20, now} end
-- The keys built from what the caller read must still be this reservation's.
if move and res[2] ~= expected_slot then return {54, now} end
local phone_moves = fields.phone ~= nil and fields.phone ~= res[5]
-- Judged by Redis TIME against the start stored now: a guest who has not come is only a
-- no-show once the booking began (a move committed first moves the start too).
local new_status = fields.status
if new_status == 'no_show' and now < tonumber(res[12]) then return {43, now, res[12]} end
if phone_moves and res[5] ~= expected_phone then return {54, now} end

local party = tonumber(res[4])
if new_party ~= '' then party = tonumber(new_party) end
local own_state = 'r|' .. reference
local old_units = record_units(res[3])
local venue = redis.call('HMGET', KEYS[10], 'kind', 'slot_minutes', 'bookings_open',
  'min_notice_minutes', 'max_days_ahead', 'rules_version')
-- The caller chose the keys (slots, combinations) by the rules it cached: they must be current.
if (venue[6] or '0') ~= ARGV[12] then return {54, now} end
-- Before any write: the block must hold every key the hand-off to the waitlist may touch
-- (a move away frees every slot the booking spans now).
local old_span = booking_slots(res[2], res[9])
local ask = waitlist_missing(now, old_span[1], old_span[#old_span], nil)
if ask then return ask end
local cells = {}

-- The rich path: all k slots of the booking move (or change span) together.
local function rich_change()
  local target_ids = cjson.decode(ARGV[13])
  local step = tonumber(ARGV[14])
  local covers_cap = tonumber(ARGV[15])
  local old_slots = booking_slots(res[2], res[9])
  local old_pairs = slot_keys(KEYS[2], KEYS[2], 19, #old_slots)
  local new_pairs = slot_keys(KEYS[3], KEYS[3], 19 + 2 * (#old_slots - 1), #target_ids)
  if not old_pairs or not new_pairs then return {54, now} end
  if target_ids[1] ~= target_slot then return {54, now} end
  local relocate = move or #target_ids ~= #old_slots
  local starts = tonumber(res[12])
  local ends = tonumber(res[13])
  local chosen = old_units
  local combo = res[11] or ''
  if relocate then
    local whole
    starts, whole = span_start(KEYS[4], target_ids, step)
    if not starts then return {11, now} end
    if move and not as_staff then
      local refusal = booking_refusal(venue[3], venue[4], venue[5], starts, now)
      if refusal then return {refusal, now} end
    end
    if not whole then return {31, now, -1} end
    ends = starts + #target_ids * step
    local asked = {}
    if target_unit ~= '' then asked = {target_unit} end
    local combos_key, combos_fit_key = nil, nil
    if ARGV[17] == '1' then combos_key, combos_fit_key = KEYS[12], KEYS[13] end
    local lapsed, combo_id
    chosen, lapsed, combo_id = choose_booking(new_pairs, KEYS[5], KEYS[6], combos_key,
      combos_fit_key, asked, party, now, own_state)
    if not chosen then return lapsed end
    if #lapsed > 0 then return sweep_reply(now, lapsed) end
    combo = combo_id or ''
  elseif new_party ~= '' then
    -- It stays: its table (or combination) must seat the new party.
    -- (A combination seats its own capacity; else every table must seat the party.)
    local stored = combo ~= '' and redis.call('HGET', KEYS[12], combo)
    local capacity = nil
    if stored then
      capacity = tonumber(cjson.decode(stored).capacity)
    else
      for _, c in ipairs(redis.call('HMGET', KEYS[5], unpack(old_units))) do
        if not capacity or tonumber(c) < capacity then capacity = tonumber(c) end
      end
    end
    if not capacity or capacity < party then return {31, now, -1} end
  end
  if covers_cap > 0 and (relocate or new_party ~= '') then
    local taken = covers(KEYS[15], now, own_state)
    if taken + party > covers_cap then return {47, now, taken, covers_cap} end
  end
  if ARGV[16] == '1' and not as_staff and starts and ends then
    local phone_key = KEYS[17]
    if phone_moves then phone_key = KEYS[18] end
    if (res[7] and res[7] ~= '' and guest_overlap(KEYS[16], starts, ends, now, own_state))
        or guest_overlap(phone_key, starts, ends, now, own_state) then
      return {48, now}
    end
  end
  if relocate then
    -- Free the old cells and claim the new ones in this same step: never both, never neither.
    for i, pair in ipairs(old_pairs) do
      for _, unit in ipairs(old_units) do
        if redis.call('HGET', pair[1], unit) == own_state then redis.call('HDEL', pair[1], unit) end
        cells[#cells + 1] = {slot = old_slots[i], unit = unit}
      end
    end
    for i, pair in ipairs(new_pairs) do
      for _, unit in ipairs(chosen) do
        redis.call('HSET', pair[1], unit, own_state)
        cells[#cells + 1] = {slot = target_ids[i], unit = unit}
      end
    end
    local slots_json = ''
    if #target_ids > 1 then slots_json = ARGV[13] end
    redis.call('HSET', KEYS[1], 'slot', target_slot, 'units', cjson.encode(chosen),
      'starts', string.format('%d', starts), 'ends', string.format('%d', ends),
      'slots', slots_json, 'combo', combo)
    redis.call('ZADD', KEYS[7], starts, reference)
  else
    for i, _ in ipairs(old_pairs) do
      for _, unit in ipairs(old_units) do cells[#cells + 1] = {slot = old_slots[i], unit = unit} end
    end
  end
  -- The rule indexes follow it, in this same step.
  local idx = res[10] or ''
  local new_idx = ''
  if string.find(idx, 'c', 1, true) then redis.call('HDEL', KEYS[14], own_state) end
  if covers_cap > 0 or string.find(idx, 'c', 1, true) then
    new_idx = new_idx .. 'c'
    redis.call('HSET', KEYS[15], own_state, tostring(party))
  end
  if string.find(idx, 'g', 1, true) and starts and ends then
    new_idx = new_idx .. 'g'
    redis.call('HSET', KEYS[16], own_state, string.format('%d|%d', starts, ends))
  end
  if string.find(idx, 'p', 1, true) then redis.call('HDEL', KEYS[17], own_state) end
  if (ARGV[16] == '1' or string.find(idx, 'p', 1, true)) and starts and ends then
    new_idx = new_idx .. 'p'
    redis.call('HSET', KEYS[18], own_state, string.format('%d|%d', starts, ends))
  end
  redis.call('HSET', KEYS[1], 'idx', new_idx)
  return nil
end
-- The rich path's ARGV[13..17] come before the waitlist block's JSON (always last).
if #ARGV >= 17 then
  local refused = rich_change()
  if refused then return refused end
elseif move then
  local starts = tonumber(redis.call('ZSCORE', KEYS[4], target_slot))
  if not starts then return {11, now} end
  if not as_staff then
    local refusal = booking_refusal(venue[3], venue[4], venue[5], starts, now)
    if refusal then return {refusal, now} end
  end
  local asked = {}
  if target_unit ~= '' then asked = {target_unit} end
  local chosen, lapsed = choose_units(KEYS[3], KEYS[5], KEYS[6], asked, party, 1, now,
    own_state, venue[1])
  if not chosen then return lapsed end
  if #lapsed > 0 then return sweep_reply(now, lapsed) end
  -- Free the old cell and claim the new one in this same step: never both, never neither.
  for _, unit in ipairs(old_units) do
    if redis.call('HGET', KEYS[2], unit) == own_state then redis.call('HDEL', KEYS[2], unit) end
    cells[#cells + 1] = {slot = res[2], unit = unit}
  end
  for _, unit in ipairs(chosen) do
    redis.call('HSET', KEYS[3], unit, own_state)
    cells[#cells + 1] = {slot = target_slot, unit = unit}
  end
  local ends = ''
  if venue[2] then ends = string.format('%d', starts + tonumber(venue[2]) * 60000) end
  redis.call('HSET', KEYS[1], 'slot', target_slot, 'units', cjson.encode(chosen),
    'starts', string.format('%d', starts), 'ends', ends)
  redis.call('ZADD', KEYS[7], starts, reference)
else
  if new_party ~= '' then
    local capacities = redis.call('HMGET', KEYS[5], unpack(old_units))
    for _, capacity in ipairs(capacities) do
      if tonumber(capacity) < party then return {31, now, -1} end
    end
  end
  for _, unit in ipairs(old_units) do cells[#cells + 1] = {slot = res[2], unit = unit} end
end

for name, value in pairs(fields) do redis.call('HSET', KEYS[1], name, value) end
redis.call('HSET', KEYS[1], 'party', tostring(party))
if phone_moves then
  redis.call('SREM', KEYS[8], reference)
  redis.call('SADD', KEYS[9], reference)
end
feed_append(KEYS[11], feed_maxlen, 'changed', now, res[6], res[7], reference,
  cjson.encode(cells), actor, new_status)
-- A move away freed cells of the slot it left: they go to the waitlist in this same step.
waitlist_after_free(now, feed_maxlen, nil)
return {0, now}
