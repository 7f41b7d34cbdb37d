--[[
release.lua: the bearer lets a hold go; its cells are free at once. Idempotent.

Input:
  KEYS[1]  hold hash
  KEYS[2]  cells hash          of the hold's slot
  KEYS[3]  held zset           of the hold's slot
  KEYS[4]  holds zset          live hold id -> expires ms
  KEYS[5]  user zset           "<hold id>|<units>" -> expires ms
  KEYS[6]  feed stream
  KEYS[7]  covers hash         of the hold's first slot (used when its record's idx has 'c')
  KEYS[8]  guest hash          of the hold's user (used when its record's idx has 'g')
  KEYS[9]  seat index hash     of a seat-map event (keys.seat_index; else absent)
  KEYS[10], KEYS[11], ...    cells hash, held zset of each following slot of its booking
  KEYS[n..]                    the waitlist block (lua/include/waitlist_offer.lua), last
  ARGV[1]  hold id
  ARGV[2]  token digest        sha256 hex of the presented Hold-Token
  ARGV[3]  feed maxlen
  ARGV[4]  tombstone ms        how long the ended hold is remembered
  ARGV[last]                   the waitlist block's JSON
Output: {code, now ms, ...}
  0  OK                      released now ('released' entry), or it had lapsed ('expired' entry)
  1  REPLAYED                it had already ended (released or expired): nothing to do
  13 HOLD_NOT_FOUND
  20 FORBIDDEN               wrong token
  41 HOLD_CONFIRMED          already confirmed (cancel the reservation instead): reference
  54 STALE                   fewer slot keys than its booking spans: read, retry
  57 WAITLIST_KEYS           waiting entries the freed cells may fit need keys the block
                             lacks: slot ids JSON, cell slot ids JSON; nothing changed
]]

--- @include "booking_cells"
--- @include "booking_slots"
--- @include "end_hold"
--- @include "feed_append"
--- @include "free_hold_cells"
--- @include "now_ms"
--- @include "record_units"
--- @include "seat_runs"
--- @include "slot_keys"
--- @include "unindex_booking"
--- @include "waitlist_offer"

local hold_id = ARGV[1]
local token_digest = ARGV[2]
local feed_maxlen = tonumber(ARGV[3])
local tombstone_ms = tonumber(ARGV[4])
local now = now_ms()

local hold = redis.call('HMGET', KEYS[1], 'digest', 'status', 'expires', 'units', 'n', 'user',
  'slot', 'ref', 'slots', 'idx')
if not hold[1] then return {13, now} end
if hold[1] ~= token_digest then return {20, now} end
if hold[2] == 'confirmed' then return {41, now, hold[8]} end
if hold[2] ~= 'held' then return {1, now} end

-- A hold that lapsed before the sweeper saw it ends as expired, not released.
local event = 'released'
if tonumber(hold[3]) <= now then event = 'expired' end
local units = record_units(hold[4])
local slots = booking_slots(hold[7], hold[9])
local slot_pairs = slot_keys(KEYS[2], KEYS[3], 10, #slots)
if not slot_pairs then return {54, now} end
-- Before any write: the block must hold every key the hand-off to the waitlist may touch.
local ask = waitlist_missing(now, slots[1], slots[#slots], nil)
if ask then return ask end
-- The free-run index learns of the freed seats in this same step.
seat_runs_release(KEYS[9], KEYS[2], units, 'h|' .. hold_id .. '|')
for _, pair in ipairs(slot_pairs) do free_hold_cells(pair[1], pair[2], hold_id, units) end
unindex_booking(hold[10], 'h|' .. hold_id, KEYS[7], KEYS[8], '')
end_hold(KEYS[1], KEYS[4], KEYS[5], hold_id, hold[5], event, tombstone_ms)
feed_append(KEYS[6], feed_maxlen, event, now, hold_id, hold[6], nil, booking_cells(slots, units))
-- The freed cells go to the waitlist in this same step (an offer's entry expires with it).
waitlist_after_free(now, feed_maxlen, KEYS[1])
return {0, now}
