--[[
book.lua: a staff booking (phone call, walk-in): claim a cell directly as a confirmed
reservation, with no hold. Skips the pause, past and booking-window checks; never expires.
A venue with durations, combinations, pacing or one booking per guest ("rich", ARGV[12]
given): one table or combination for k consecutive slots, within the covers cap.

Input:
  KEYS[1]  venue hash          kind, slot_minutes, rules_version
  KEYS[2]  slots zset          slot id -> start ms
  KEYS[3]  cells hash          of the slot
  KEYS[4]  units hash          unit id -> capacity
  KEYS[5]  units-by-fit zset   unit id -> capacity * 2^20 + sequence
  KEYS[6]  reservation hash    the new reservation
  KEYS[7]  by-start zset       reference -> slot start ms
  KEYS[8]  by-phone set        references of this client
  KEYS[9]  feed stream
  KEYS[10] combinations hash   combination id -> JSON {tables, capacity}        (rich only)
  KEYS[11] combinations-by-fit zset  id -> capacity * 2^20 + sequence           (rich only)
  KEYS[12] covers hash         of the first slot                                (rich only)
  KEYS[13] guest hash          of the phone                                     (rich only)
  KEYS[14], KEYS[15], ...      cells hash, held zset of each following slot     (rich only)
  ARGV[1]  reference           new, random
  ARGV[2]  manage digest       sha256 hex of the new manage token
  ARGV[3]  slot id
  ARGV[4]  party size
  ARGV[5]  units               JSON array of the unit ids asked for; [] = best fit
  ARGV[6]  count               with best fit: how many units
  ARGV[7]  fields              JSON object: name, phone, email, notes, business_notes, tags
  ARGV[8]  venue id
  ARGV[9]  feed maxlen
  ARGV[10] actor               'admin' or the staff token's id (written to the feed)
  ARGV[11] rules version       the venue's rules_version the caller built its request from
  ARGV[12] slot ids            JSON array of the k slots of the booking (rich only)
  ARGV[13] step ms             slot_minutes in ms
  ARGV[14] covers cap          max_covers_per_slot (0: off)
  ARGV[15] one booking         '1': index the booking under its phone (one booking per guest)
  ARGV[16] combinations        '1': the venue has combinations (KEYS[10], KEYS[11] are read)
Output: {code, now ms, ...}
  0  OK                      reference
  10 VENUE_NOT_FOUND
  11 SLOT_NOT_FOUND
  12 UNIT_NOT_FOUND          unit id
  30 UNIT_UNAVAILABLE        unit id, latest expires ms of a blocking hold (-1: reserved)
  31 NO_TABLE_AVAILABLE      earliest expires ms of a blocking hold (-1: none)
  32 NOT_ENOUGH_SEATS        earliest expires ms of a blocking hold (-1: none)
  47 COVERS_LIMIT_REACHED    covers already starting in the slot, the cap
  51 REFERENCE_TAKEN         the random reference exists already: pick another, retry
  52 NEEDS_SWEEP             hold ids of lapsed holds on the chosen cells (sweep, then retry)
  54 STALE                   the venue's rules changed since the caller read them: read, retry
  55 UNIT_REPEATED           unit id named more than once
]]

--- @include "booking_cells"
--- @include "cells_json"
--- @include "choose_booking"
--- @include "choose_units"
--- @include "covers"
--- @include "feed_append"
--- @include "now_ms"
--- @include "repeated_unit"
--- @include "slot_keys"
--- @include "span_start"
--- @include "sweep_reply"
--- @include "write_reservation"

local reference = ARGV[1]
local manage_digest = ARGV[2]
local slot = ARGV[3]
local party_size = tonumber(ARGV[4])
local asked_units = cjson.decode(ARGV[5])
local count = tonumber(ARGV[6])
local fields = cjson.decode(ARGV[7])
local venue_id = ARGV[8]
local feed_maxlen = tonumber(ARGV[9])
local now = now_ms()

-- One cell is claimed once: a list naming a unit twice is no request for two units.
local twice = repeated_unit(asked_units)
if twice then return {55, now, twice} end

local venue = redis.call('HMGET', KEYS[1], 'kind', 'slot_minutes', 'rules_version')
if not venue[1] then return {10, now} end
-- The caller chose the keys (slots, combinations) by the rules it cached: they must be current.
if (venue[3] or '0') ~= ARGV[11] then return {54, now} end

-- The rich path: a table or combination for k consecutive slots, within the covers cap.
local function rich_book()
  local slot_ids = cjson.decode(ARGV[12])
  local step = tonumber(ARGV[13])
  local covers_cap = tonumber(ARGV[14])
  local starts, whole = span_start(KEYS[2], slot_ids, step)
  if not starts then return {11, now} end
  if redis.call('EXISTS', KEYS[6]) == 1 then return {51, now} end
  if not whole then return {31, now, -1} end
  local ends = starts + #slot_ids * step
  local slot_pairs = slot_keys(KEYS[3], KEYS[3], 14, #slot_ids)
  if not slot_pairs then return {54, now} end
  if covers_cap > 0 then
    local taken = covers(KEYS[12], now, nil)
    if taken + party_size > covers_cap then return {47, now, taken, covers_cap} end
  end
  local combos_key, combos_fit_key = nil, nil
  if ARGV[16] == '1' then combos_key, combos_fit_key = KEYS[10], KEYS[11] end
  local chosen, lapsed, combo_id = choose_booking(slot_pairs, KEYS[4], KEYS[5], combos_key,
    combos_fit_key, asked_units, party_size, now, nil)
  if not chosen then return lapsed end
  if #lapsed > 0 then return sweep_reply(now, lapsed) end
  local state = 'r|' .. reference
  -- Every cell of every slot in this one step: all of the booking or none of it.
  for _, pair in ipairs(slot_pairs) do
    for _, unit in ipairs(chosen) do redis.call('HSET', pair[1], unit, state) end
  end
  local idx = ''
  local span = string.format('%d|%d', starts, ends)
  if covers_cap > 0 then
    idx = idx .. 'c'
    redis.call('HSET', KEYS[12], state, tostring(party_size))
  end
  if ARGV[15] == '1' then
    idx = idx .. 'p'
    redis.call('HSET', KEYS[13], state, span)
  end
  local slots_json = ''
  if #slot_ids > 1 then slots_json = ARGV[12] end
  write_reservation(KEYS[6], KEYS[7], KEYS[8], {
    reference = reference, status = 'confirmed', venue = venue_id, slot = slot,
    units = cjson.encode(chosen), party = tostring(party_size), name = fields.name,
    phone = fields.phone, email = fields.email, notes = fields.notes,
    business_notes = fields.business_notes, tags = fields.tags,
    created = string.format('%d', now), starts = string.format('%d', starts),
    ends = string.format('%d', ends), hold = '', user = '', source = 'staff',
    digest = manage_digest, idx = idx, slots = slots_json, combo = combo_id or ''}, starts)
  feed_append(KEYS[9], feed_maxlen, 'confirmed', now, nil, nil, reference,
    booking_cells(slot_ids, chosen), ARGV[10])
  return {0, now, reference}
end
if ARGV[12] then return rich_book() end

local starts = tonumber(redis.call('ZSCORE', KEYS[2], slot))
if not starts then return {11, now} end
if redis.call('EXISTS', KEYS[6]) == 1 then return {51, now} end

local chosen, lapsed = choose_units(KEYS[3], KEYS[4], KEYS[5], asked_units, party_size, count,
  now, nil, venue[1])
if not chosen then return lapsed end
if #lapsed > 0 then return sweep_reply(now, lapsed) end

local ends = ''
if venue[2] then ends = string.format('%d', starts + tonumber(venue[2]) * 60000) end
local state = 'r|' .. reference
for _, unit in ipairs(chosen) do redis.call('HSET', KEYS[3], unit, state) end
write_reservation(KEYS[6], KEYS[7], KEYS[8], {
  reference = reference, status = 'confirmed', venue = venue_id, slot = slot,
  units = cjson.encode(chosen), party = tostring(party_size), name = fields.name,
  phone = fields.phone, email = fields.email, notes = fields.notes,
  business_notes = fields.business_notes, tags = fields.tags,
  created = string.format('%d', now), starts = string.format('%d', starts), ends = ends,
  hold = '', user = '', source = 'staff', digest = manage_digest}, starts)
feed_append(KEYS[9], feed_maxlen, 'confirmed', now, nil, nil, reference, cells_json(slot, chosen),
  ARGV[10])
return {0, now, reference}
