--[[
change.lua: change a reservation in one step: contact and staff fields, party size, and/or a
move to another slot and/or table (claim the new cell, free the old one). A refusal changes
nothing. Every rule about the reservation's state is checked here, on what this script reads:
who may change it (its manage token, or staff), its status, its cells and its party. Only
what the keys were built from (the slot when it moves, the phone when it changes) can be stale;
then nothing changes and the caller reads again (STALE), which only ever follows a change of
this reservation that committed in between.

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
  KEYS[n..]                    the waitlist block (lua/include/waitlist_offer.lua), last (of the slot read)
  ARGV[1]  reference
  ARGV[2]  expected slot       what the caller read (KEYS[2], and KEYS[3] when no target slot)
  ARGV[3]  expected phone      what the caller read (KEYS[8])
  ARGV[4]  fields              JSON object of stored fields to set (strings)
  ARGV[5]  move                '1': claim a cell in the target slot, '0': stay
  ARGV[6]  target slot
  ARGV[7]  target unit         '' = best fit
  ARGV[8]  party size          '' = unchanged
  ARGV[9]  actor               staff: 'admin' or the staff token's id (skips pause/past/
                               window; may change no_show, completed; written to the feed);
                               '' = the guest
  ARGV[10] manage digest       sha256 hex of the presented Manage-Token; '' = none
  ARGV[11] feed maxlen
  ARGV[last]                   the waitlist block's JSON ('' = none)
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
  52 NEEDS_SWEEP             hold ids of lapsed holds on the target cell (sweep, then retry)
  54 STALE                   it moved, or its phone changed, since the caller read it (and
                             this change needs that key): read, retry
]]

--- @include "booking_refusal"
--- @include "choose_units"
--- @include "feed_append"
--- @include "now_ms"
--- @include "record_units"
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
  'user', 'digest')
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
if phone_moves and res[5] ~= expected_phone then return {54, now} end

local party = tonumber(res[4])
if new_party ~= '' then party = tonumber(new_party) end
local own_state = 'r|' .. reference
local old_units = record_units(res[3])
local venue = redis.call('HMGET', KEYS[10], 'kind', 'slot_minutes', 'bookings_open',
  'min_notice_minutes', 'max_days_ahead')
local cells = {}

if move then
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
  cjson.encode(cells), actor)
-- A move away freed cells of the slot it left: they go to the waitlist in this same step.
waitlist_after_free(now, feed_maxlen, nil)
return {0, now}
