--[[
hold.lua: put one hold on one or more cells of one slot, all or nothing; or (a venue with
durations, combinations, pacing or one booking per guest: ARGV[11] 'rich') on one table
or combination in k consecutive grid slots (DESIGN.md 8), checking the covers cap and the
guest's other bookings (DESIGN.md 10) in the same step; or (a seat-map event, ARGV[11]
'seats') the best block of a seat map from its free-run index (DESIGN.md 13).

Input:
  KEYS[1]  venue hash          settings: kind, bookings_open, hold_seconds, max_hold_seconds,
                               max_holds_per_user, min_notice_minutes, max_days_ahead
  KEYS[2]  slots zset          slot id -> start ms
  KEYS[3]  cells hash          of this slot: unit id -> state
  KEYS[4]  held zset           of this slot: unit id -> expires ms
  KEYS[5]  holds zset          live hold id -> expires ms (sweeper)
  KEYS[6]  user zset           "<hold id>|<units>" -> expires ms (the cap)
  KEYS[7]  hold hash           the new hold
  KEYS[8]  idempotency string  "<fingerprint>|<hold id>" (only used when ARGV[8] ~= '')
  KEYS[9]  units hash          unit id -> capacity
  KEYS[10] units-by-fit zset   unit id -> capacity * 2^20 + sequence
  KEYS[11] feed stream
  KEYS[12] seat index hash     free-run index of an event (keys.seat_index; events only,
                               a total_seats event's is absent)
  KEYS[12] combinations hash   combination id -> JSON {tables, capacity}        (rich only)
  KEYS[13] combinations-by-fit zset  id -> capacity * 2^20 + sequence           (rich only)
  KEYS[14] covers hash         of the first slot (see include/covers)           (rich only)
  KEYS[15] guest hash          of the user (see include/guest_overlap)          (rich only)
  KEYS[16], KEYS[17], ...      cells hash, held zset of each following slot     (rich only)
  ARGV[1]  hold id             new, random
  ARGV[2]  token digest        sha256 hex of the hold token
  ARGV[3]  user id
  ARGV[4]  slot id
  ARGV[5]  party size          a unit fits when its capacity >= party size
  ARGV[6]  units               JSON array of the unit ids asked for; [] = best fit
  ARGV[7]  count               with best fit: how many units (lowest fit score first)
  ARGV[8]  fingerprint         of user + body for the Idempotency-Key; '' = no key
  ARGV[9]  feed maxlen         approximate
  ARGV[10] rules version       of the venue the caller read (else STALE)
  ARGV[11] mode                'rich' | 'seats' | '' (absent: as above)
  ARGV[12..16] (rich)          slot ids JSON, slot ms, covers cap, one booking '1', combos '1'
  ARGV[12] (seats)             section, '' = every seated one
  ARGV[13] (seats)             '1' = one block in one row, '0' = apart
Output: {code, now ms, ...}
  0  OK                      hold id, created ms, expires ms, units (JSON array)
  1  REPLAYED                hold id (same Idempotency-Key and body: the earlier hold)
  10 VENUE_NOT_FOUND
  11 SLOT_NOT_FOUND
  12 UNIT_NOT_FOUND          unit id
  19 SECTION_NOT_FOUND       (a seat-map pick naming no section of the map)
  30 UNIT_UNAVAILABLE        unit id, latest expires ms of a blocking hold (-1: reserved)
  31 NO_TABLE_AVAILABLE      earliest expires ms of a blocking hold (-1: none)
  32 NOT_ENOUGH_SEATS        earliest expires ms of a blocking hold (-1: none)
  33 HOLD_LIMIT_REACHED      live held units of the user, the cap
  47 COVERS_LIMIT_REACHED    covers already starting in the slot, the cap
  48 OVERLAPPING_BOOKING
  34 BOOKINGS_PAUSED
  35 SLOT_IN_PAST
  36 OUTSIDE_BOOKING_WINDOW
  46 NOT_ENOUGH_TOGETHER     enough free seats, no block of count in one row; -1
  50 IDEMPOTENCY_MISMATCH    the key was used with another body
  52 NEEDS_SWEEP             hold ids of lapsed holds on the chosen cells (sweep, then retry)
  54 STALE                   the venue's rules changed since the caller read them: read, retry
  55 UNIT_REPEATED           unit id named more than once
]]

--- @include "booking_cells"
--- @include "booking_refusal"
--- @include "choose_booking"
--- @include "covers"
--- @include "guest_overlap"
--- @include "slot_keys"
--- @include "span_start"
--- @include "cells_json"
--- @include "choose_units"
--- @include "feed_append"
--- @include "held_state"
--- @include "now_ms"
--- @include "repeated_unit"
--- @include "seat_runs"
--- @include "sweep_reply"

local hold_id = ARGV[1]
local token_digest = ARGV[2]
local user_id = ARGV[3]
local slot = ARGV[4]
local party_size = tonumber(ARGV[5])
local asked_units = cjson.decode(ARGV[6])
local count = tonumber(ARGV[7])
local fingerprint = ARGV[8]
local feed_maxlen = tonumber(ARGV[9])
local rules_version = ARGV[10]
local mode = ARGV[11] or ''
local seat_pick = mode == 'seats'
local pick_section = ARGV[12]
local pick_together = ARGV[13] == '1'

local now = now_ms()

-- One cell is claimed once: a list naming a unit twice is no request for two units.
local twice = repeated_unit(asked_units)
if twice then return {55, now, twice} end

local venue = redis.call('HMGET', KEYS[1], 'kind', 'bookings_open', 'hold_seconds',
  'max_hold_seconds', 'max_holds_per_user', 'min_notice_minutes', 'max_days_ahead',
  'rules_version')
local kind = venue[1]
if not kind then return {10, now} end
-- The caller chose the keys (slots, combinations) by the rules it cached: they must be current.
if (venue[8] or '0') ~= rules_version then return {54, now} end

-- A retried request (same key, same body) gets the hold it created, whatever changed since.
if fingerprint ~= '' then
  local earlier = redis.call('GET', KEYS[8])
  if earlier then
    local sep = string.find(earlier, '|', 1, true)
    if string.sub(earlier, 1, sep - 1) ~= fingerprint then return {50, now} end
    return {1, now, string.sub(earlier, sep + 1)}
  end
end


-- The rich path: a table or combination for k consecutive slots, pacing, one booking per guest.
local function rich_hold()
  local slot_ids = cjson.decode(ARGV[12])
  local step = tonumber(ARGV[13])
  local covers_cap = tonumber(ARGV[14])
  local one_booking = ARGV[15] == '1'
  local slot_start, whole = span_start(KEYS[2], slot_ids, step)
  if not slot_start then return {11, now} end
  local refusal = booking_refusal(venue[2], venue[6], venue[7], slot_start, now)
  if refusal then return {refusal, now} end
  -- A table fits only when all k slots are in the grid, back to back.
  if not whole then return {31, now, -1} end
  local booking_end = slot_start + #slot_ids * step
  local slot_pairs = slot_keys(KEYS[3], KEYS[4], 16, #slot_ids)
  if not slot_pairs then return {54, now} end
  if covers_cap > 0 then
    local taken = covers(KEYS[14], now, nil)
    if taken + party_size > covers_cap then return {47, now, taken, covers_cap} end
  end
  if one_booking and guest_overlap(KEYS[15], slot_start, booking_end, now, nil) then
    return {48, now}
  end
  -- The cap counts held tables (a combination: each of its tables), whatever the span. A
  -- user with no table left under it is refused first, as on the plain path.
  redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now)
  local held_units = 0
  for _, member in ipairs(redis.call('ZRANGE', KEYS[6], 0, -1)) do
    held_units = held_units + tonumber(string.match(member, '|(%d+)$'))
  end
  local cap = tonumber(venue[5])
  if held_units + 1 > cap then return {33, now, held_units, cap} end
  local combos_key, combos_fit_key = nil, nil
  if ARGV[16] == '1' then combos_key, combos_fit_key = KEYS[12], KEYS[13] end
  local chosen, lapsed, combo_id = choose_booking(slot_pairs, KEYS[9], KEYS[10], combos_key,
    combos_fit_key, asked_units, party_size, now, nil)
  if not chosen then return lapsed end
  if held_units + #chosen > cap then return {33, now, held_units, cap} end
  if #lapsed > 0 then return sweep_reply(now, lapsed) end

  local expires = now + tonumber(venue[3]) * 1000
  local lifetime_end = now + tonumber(venue[4]) * 1000
  if expires > lifetime_end then expires = lifetime_end end
  local state = held_state(hold_id, expires)
  -- Every cell of every slot in this one step: all of the booking or none of it.
  for _, pair in ipairs(slot_pairs) do
    for _, unit in ipairs(chosen) do
      redis.call('HSET', pair[1], unit, state)
      redis.call('ZADD', pair[2], expires, unit)
    end
  end
  local units_json = cjson.encode(chosen)
  local idx = ''
  if covers_cap > 0 then
    idx = idx .. 'c'
    redis.call('HSET', KEYS[14], 'h|' .. hold_id, party_size .. '|' .. string.format('%d', expires))
  end
  if one_booking then
    idx = idx .. 'g'
    redis.call('HSET', KEYS[15], 'h|' .. hold_id, string.format('%d|%d|%d', slot_start,
      booking_end, expires))
  end
  redis.call('HSET', KEYS[7], 'user', user_id, 'digest', token_digest, 'slot', slot,
    'units', units_json, 'n', tostring(#chosen), 'party', tostring(party_size),
    'created', string.format('%d', now), 'expires', string.format('%d', expires),
    'ends', string.format('%d', lifetime_end), 'refreshes', '0', 'status', 'held',
    'starts', string.format('%d', slot_start), 'stops', string.format('%d', booking_end),
    'idx', idx, 'combo', combo_id or '')
  if #slot_ids > 1 then redis.call('HSET', KEYS[7], 'slots', ARGV[12]) end
  redis.call('ZADD', KEYS[5], expires, hold_id)
  redis.call('ZADD', KEYS[6], expires, hold_id .. '|' .. #chosen)
  if fingerprint ~= '' then
    redis.call('SET', KEYS[8], fingerprint .. '|' .. hold_id, 'PX', tonumber(venue[4]) * 1000)
  end
  feed_append(KEYS[11], feed_maxlen, 'held', now, hold_id, user_id, nil,
    booking_cells(slot_ids, chosen))
  return {0, now, hold_id, now, expires, units_json}
end
if mode == 'rich' then return rich_hold() end

local slot_start = tonumber(redis.call('ZSCORE', KEYS[2], slot))
if not slot_start then return {11, now} end
local refusal = booking_refusal(venue[2], venue[6], venue[7], slot_start, now)
if refusal then return {refusal, now} end

local wanted = count
if #asked_units > 0 then wanted = #asked_units end

-- The cap counts live held units; members that lapsed are pruned first, by Redis time.
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now)
local held_units = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[6], 0, -1)) do
  held_units = held_units + tonumber(string.match(member, '|(%d+)$'))
end
local cap = tonumber(venue[5])
if held_units + wanted > cap then return {33, now, held_units, cap} end

local chosen, lapsed
if seat_pick then
  chosen, lapsed = seat_map_choice(KEYS[3], KEYS[4], KEYS[12], pick_section, wanted,
    pick_together, now)
else
  chosen, lapsed = choose_units(KEYS[3], KEYS[9], KEYS[10], asked_units, party_size, wanted,
    now, nil, kind)
end
if not chosen then return lapsed end
if #lapsed > 0 then return sweep_reply(now, lapsed) end

local expires = now + tonumber(venue[3]) * 1000
local lifetime_end = now + tonumber(venue[4]) * 1000
if expires > lifetime_end then expires = lifetime_end end
local state = held_state(hold_id, expires)
for _, unit in ipairs(chosen) do
  redis.call('HSET', KEYS[3], unit, state)
  redis.call('ZADD', KEYS[4], expires, unit)
end
-- The free-run index follows the cells in this same step (only events may have one).
if kind == 'event' then seat_runs_taken(KEYS[12], chosen) end
-- A JSON array: no character of a unit id can split it when it is read back.
local units_json = cjson.encode(chosen)
redis.call('HSET', KEYS[7], 'user', user_id, 'digest', token_digest, 'slot', slot,
  'units', units_json, 'n', tostring(#chosen), 'party', tostring(party_size),
  'created', string.format('%d', now), 'expires', string.format('%d', expires),
  'ends', string.format('%d', lifetime_end),
  'refreshes', '0', 'status', 'held')
redis.call('ZADD', KEYS[5], expires, hold_id)
redis.call('ZADD', KEYS[6], expires, hold_id .. '|' .. #chosen)
if fingerprint ~= '' then
  redis.call('SET', KEYS[8], fingerprint .. '|' .. hold_id, 'PX', tonumber(venue[4]) * 1000)
end
feed_append(KEYS[11], feed_maxlen, 'held', now, hold_id, user_id, nil, cells_json(slot, chosen))
return {0, now, hold_id, now, expires, units_json}
