--[[
cancel.lua: cancel a reservation; its cells are free at once. Idempotent. Every rule about the
reservation's state is checked here, on what this script reads: who may cancel it (its manage
token, or staff), its status, and that its cells are the ones in KEYS[2].

Input:
  KEYS[1]  reservation hash
  KEYS[2]  cells hash          of the slot the caller read (its keys were built from it)
  KEYS[3]  feed stream
  KEYS[4]  covers hash         of its first slot (used when its record's idx has 'c')
  KEYS[5]  guest hash          of its user (idx 'g')
  KEYS[6]  guest hash          of its phone (idx 'p')
  KEYS[7]  seat index hash     of a seat-map event (keys.seat_index; else absent)
  KEYS[8], KEYS[9], ...        cells hash, held zset of each following slot of its booking
  KEYS[n..]                    the waitlist block (lua/include/waitlist_offer.lua), last
  ARGV[1]  reference
  ARGV[2]  expected slot       what the caller read
  ARGV[3]  manage digest       sha256 hex of the presented Manage-Token; '' = none
  ARGV[4]  actor               staff: 'admin' or the staff token's id (any status; no token
                               needed; written to the feed); '' = a guest
  ARGV[5]  feed maxlen
  ARGV[last]                   the waitlist block's JSON
Output: {code, now ms}
  0  OK                      cancelled now ('cancelled' entry)
  1  REPLAYED                it was cancelled already: unchanged
  14 RESERVATION_NOT_FOUND
  20 FORBIDDEN               a guest without its manage token, or cancelling a reservation
                             that only staff may change (no_show, completed)
  54 STALE                   it moved to another slot (or spans more slots than the keys
                             passed) since the caller read it: read, retry
  57 WAITLIST_KEYS           waiting entries the freed cells may fit need keys the block
                             lacks: slot ids JSON, cell slot ids JSON; nothing changed
]]

--- @include "booking_cells"
--- @include "booking_slots"
--- @include "feed_append"
--- @include "now_ms"
--- @include "record_units"
--- @include "seat_runs"
--- @include "slot_keys"
--- @include "unindex_booking"
--- @include "waitlist_offer"

local reference = ARGV[1]
local expected_slot = ARGV[2]
local presented_digest = ARGV[3]
local actor = ARGV[4]
local as_staff = actor ~= ''
local feed_maxlen = tonumber(ARGV[5])
local now = now_ms()

local res = redis.call('HMGET', KEYS[1], 'status', 'units', 'slot', 'hold', 'user', 'digest',
  'slots', 'idx')
if not res[1] then return {14, now} end
-- Digests of random tokens; Lua interns every string, so == takes the same time for any two.
if not as_staff and (presented_digest == '' or presented_digest ~= res[6]) then
  return {20, now}
end
if res[1] == 'cancelled' then return {1, now} end
-- The status read here decides: a staff mark (no_show, completed) that committed first wins.
if not as_staff and res[1] ~= 'confirmed' then return {20, now} end
-- KEYS[2] must be the cells of the slot it is in now (a move may have committed since).
if res[3] ~= expected_slot then return {54, now} end

local units = record_units(res[2])
local slots = booking_slots(res[3], res[7])
local slot_pairs = slot_keys(KEYS[2], KEYS[2], 8, #slots)
if not slot_pairs then return {54, now} end
-- Before any write: the block must hold every key the hand-off to the waitlist may touch.
local ask = waitlist_missing(now, slots[1], slots[#slots], nil)
if ask then return ask end
local state = 'r|' .. reference
-- The free-run index learns of the freed seats in this same step.
seat_runs_release(KEYS[7], KEYS[2], units, state)
for _, pair in ipairs(slot_pairs) do
  for _, unit in ipairs(units) do
    -- Free only what points at it (a cell that does not is another owner's: the audit says so).
    if redis.call('HGET', pair[1], unit) == state then redis.call('HDEL', pair[1], unit) end
  end
end
unindex_booking(res[8], state, KEYS[4], KEYS[5], KEYS[6])
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'cancelled_at', string.format('%d', now))
feed_append(KEYS[3], feed_maxlen, 'cancelled', now, res[4], res[5], reference,
  booking_cells(slots, units), actor)
-- The freed cells go to the waitlist in this same step.
waitlist_after_free(now, feed_maxlen, nil)
return {0, now}
