--[[
confirm.lua: check a live hold and consume it into a confirmed reservation, in one step.
Idempotent per hold: confirming it again answers the reservation it became.

Input:
  KEYS[1]  hold hash
  KEYS[2]  cells hash          of the hold's slot
  KEYS[3]  held zset           of the hold's slot
  KEYS[4]  holds zset          live hold id -> expires ms
  KEYS[5]  user zset           "<hold id>|<units>" -> expires ms
  KEYS[6]  reservation hash    the new reservation
  KEYS[7]  by-start zset       reference -> slot start ms
  KEYS[8]  by-phone set        references of this client
  KEYS[9]  slots zset          slot id -> start ms
  KEYS[10] venue hash          slot_minutes, one_booking_per_guest
  KEYS[11] feed stream
  KEYS[12] covers hash         of the hold's first slot (used when its idx has 'c')
  KEYS[13] guest hash          of the hold's user (used when its idx has 'g')
  KEYS[14] guest hash          of the phone (read and written with one_booking_per_guest)
  KEYS[15], KEYS[16], ...      cells hash, held zset of each following slot of its booking
  KEYS[n..]                    the waitlist block (lua/include/waitlist_offer.lua), last (no offers)
  ARGV[1]  hold id
  ARGV[2]  token digest        sha256 hex of the presented Hold-Token
  ARGV[3]  reference           new, random
  ARGV[4]  manage digest       sha256 hex of the new manage token
  ARGV[5]  name
  ARGV[6]  phone               E.164
  ARGV[7]  email               '' = none
  ARGV[8]  notes               '' = none
  ARGV[9]  venue id
  ARGV[10] feed maxlen
  ARGV[11] tombstone ms        how long the consumed hold is remembered (idempotent retries)
  ARGV[last]                   the waitlist block's JSON
Output: {code, now ms, ...}
  0  OK                      reference
  1  REPLAYED                already confirmed: its reference
  13 HOLD_NOT_FOUND
  20 FORBIDDEN               wrong token
  40 HOLD_EXPIRED            lapsed, released or expired
  48 OVERLAPPING_BOOKING     one booking per guest: the phone has a reservation overlapping
                             this one (the hold stays as it was)
  51 REFERENCE_TAKEN         the random reference exists already: pick another, retry
  54 STALE                   fewer slot keys than its booking spans: read, retry
]]

--- @include "booking_cells"
--- @include "booking_slots"
--- @include "end_hold"
--- @include "feed_append"
--- @include "guest_overlap"
--- @include "now_ms"
--- @include "record_units"
--- @include "slot_keys"
--- @include "waitlist_offer"
--- @include "write_reservation"

local hold_id = ARGV[1]
local token_digest = ARGV[2]
local reference = ARGV[3]
local manage_digest = ARGV[4]
local name = ARGV[5]
local phone = ARGV[6]
local email = ARGV[7]
local notes = ARGV[8]
local venue_id = ARGV[9]
local feed_maxlen = tonumber(ARGV[10])
local tombstone_ms = tonumber(ARGV[11])
local now = now_ms()

local hold = redis.call('HMGET', KEYS[1], 'digest', 'status', 'expires', 'units', 'n', 'user',
  'slot', 'party', 'ref', 'slots', 'idx', 'stops', 'combo')
if not hold[1] then return {13, now} end
if hold[1] ~= token_digest then return {20, now} end
if hold[2] == 'confirmed' then return {1, now, hold[9]} end
if hold[2] ~= 'held' or tonumber(hold[3]) <= now then return {40, now} end
if redis.call('EXISTS', KEYS[6]) == 1 then return {51, now} end

local slot = hold[7]
local starts = tonumber(redis.call('ZSCORE', KEYS[9], slot))
local venue = redis.call('HMGET', KEYS[10], 'slot_minutes', 'one_booking_per_guest')
local slot_minutes = venue[1]
local ends = ''
if hold[12] then
  ends = hold[12]
elseif slot_minutes then
  ends = string.format('%d', starts + tonumber(slot_minutes) * 60000)
end
local slots = booking_slots(slot, hold[10])
local slot_pairs = slot_keys(KEYS[2], KEYS[3], 15, #slots)
if not slot_pairs then return {54, now} end
local idx = hold[11] or ''
-- One booking per guest: the phone's reservations overlapping this time refuse it; the
-- hold stays as it was (the guest may release it, or confirm with another booking gone).
local by_phone = venue[2] == '1' and ends ~= ''
if by_phone and guest_overlap(KEYS[14], starts, tonumber(ends), now, nil) then
  return {48, now}
end

-- The hold's cells become the reservation's in the same step that consumes the hold.
local units = record_units(hold[4])
local state = 'r|' .. reference
for _, pair in ipairs(slot_pairs) do
  for _, unit in ipairs(units) do
    redis.call('HSET', pair[1], unit, state)
    redis.call('ZREM', pair[2], unit)
  end
end
-- The rule indexes name the reservation from now on, in this same step.
local member = 'r|' .. reference
if string.find(idx, 'c', 1, true) then
  redis.call('HDEL', KEYS[12], 'h|' .. hold_id)
  redis.call('HSET', KEYS[12], member, hold[8])
end
if string.find(idx, 'g', 1, true) then
  redis.call('HDEL', KEYS[13], 'h|' .. hold_id)
  redis.call('HSET', KEYS[13], member, string.format('%d|%s', starts, ends))
elseif by_phone and hold[6] and hold[6] ~= '' then
  -- (A hold placed before the rule was on: its user's later holds must see it now.)
  idx = idx .. 'g'
  redis.call('HSET', KEYS[13], member, string.format('%d|%s', starts, ends))
end
if by_phone then
  idx = idx .. 'p'
  redis.call('HSET', KEYS[14], member, string.format('%d|%s', starts, ends))
end
write_reservation(KEYS[6], KEYS[7], KEYS[8], {
  reference = reference, status = 'confirmed', venue = venue_id, slot = slot,
  units = cjson.encode(units), party = hold[8], name = name, phone = phone, email = email,
  notes = notes, created = string.format('%d', now), starts = string.format('%d', starts),
  ends = ends, hold = hold_id, user = hold[6], digest = manage_digest, idx = idx,
  slots = hold[10] or '', combo = hold[13] or ''}, starts)
redis.call('HSET', KEYS[1], 'ref', reference)
-- A confirmed offer confirms its waitlist entry in the same step.
waitlist_hold_ended(waitlist_block(), KEYS[1], 'confirmed', now)
end_hold(KEYS[1], KEYS[4], KEYS[5], hold_id, hold[5], 'confirmed', tombstone_ms)
feed_append(KEYS[11], feed_maxlen, 'confirmed', now, hold_id, hold[6], reference,
  booking_cells(slots, units))
return {0, now, reference}
