--[[
refresh.lua: extend a live hold to now + hold_seconds, never past created + max_hold_seconds.
A refused refresh changes nothing.

Input:
  KEYS[1]  hold hash
  KEYS[2]  cells hash          of the hold's slot
  KEYS[3]  held zset           of the hold's slot
  KEYS[4]  holds zset          live hold id -> expires ms
  KEYS[5]  user zset           "<hold id>|<units>" -> expires ms
  KEYS[6]  venue hash          hold_seconds, max_hold_seconds
  KEYS[7]  feed stream
  KEYS[8]  covers hash         of the hold's first slot (used when its record's idx has 'c')
  KEYS[9]  guest hash          of the hold's user (used when its record's idx has 'g')
  KEYS[10], KEYS[11], ...     cells hash, held zset of each following slot of its booking
  ARGV[1]  hold id
  ARGV[2]  token digest        sha256 hex of the presented Hold-Token
  ARGV[3]  feed maxlen
Output: {code, now ms, ...}
  0  OK                      created ms, new expires ms
  13 HOLD_NOT_FOUND
  20 FORBIDDEN               wrong token
  38 HOLD_LIFETIME_EXCEEDED  expires already equals created + max_hold_seconds
  40 HOLD_EXPIRED            lapsed, released or expired
  41 HOLD_CONFIRMED          already confirmed: reference
  54 STALE                   fewer slot keys than its booking spans: read, retry
]]

--- @include "booking_cells"
--- @include "booking_slots"
--- @include "feed_append"
--- @include "held_state"
--- @include "now_ms"
--- @include "record_units"
--- @include "slot_keys"

local hold_id = ARGV[1]
local token_digest = ARGV[2]
local feed_maxlen = tonumber(ARGV[3])
local now = now_ms()

local hold = redis.call('HMGET', KEYS[1], 'digest', 'status', 'created', 'expires', 'units',
  'n', 'user', 'slot', 'ref', 'ends', 'slots', 'idx', 'party', 'starts', 'stops')
if not hold[1] then return {13, now} end
if hold[1] ~= token_digest then return {20, now} end
if hold[2] == 'confirmed' then return {41, now, hold[9]} end
local created = tonumber(hold[3])
local expires = tonumber(hold[4])
if hold[2] ~= 'held' or expires <= now then return {40, now} end

local venue = redis.call('HMGET', KEYS[6], 'hold_seconds', 'max_hold_seconds')
-- The lifetime is fixed when the hold is placed; a later change of the venue's rule
-- neither shortens nor extends it.
local lifetime_end = tonumber(hold[10]) or (created + tonumber(venue[2]) * 1000)
if expires >= lifetime_end then return {38, now} end
local new_expires = now + tonumber(venue[1]) * 1000
if new_expires > lifetime_end then new_expires = lifetime_end end
-- Never shorten a hold (hold_seconds may have been lowered since it was placed).
if new_expires < expires then new_expires = expires end

local units = record_units(hold[5])
local slots = booking_slots(hold[8], hold[11])
local slot_pairs = slot_keys(KEYS[2], KEYS[3], 10, #slots)
if not slot_pairs then return {54, now} end
local state = held_state(hold_id, new_expires)
for _, pair in ipairs(slot_pairs) do
  for _, unit in ipairs(units) do
    redis.call('HSET', pair[1], unit, state)
    redis.call('ZADD', pair[2], new_expires, unit)
  end
end
-- The rule indexes carry the expiry too: a lapsed hold counts no more.
local idx = hold[12] or ''
if string.find(idx, 'c', 1, true) then
  redis.call('HSET', KEYS[8], 'h|' .. hold_id, hold[13] .. '|' .. string.format('%d', new_expires))
end
if string.find(idx, 'g', 1, true) then
  redis.call('HSET', KEYS[9], 'h|' .. hold_id, hold[14] .. '|' .. hold[15] .. '|'
    .. string.format('%d', new_expires))
end
redis.call('HSET', KEYS[1], 'expires', string.format('%d', new_expires))
redis.call('HINCRBY', KEYS[1], 'refreshes', 1)
redis.call('ZADD', KEYS[4], new_expires, hold_id)
redis.call('ZADD', KEYS[5], new_expires, hold_id .. '|' .. hold[6])
feed_append(KEYS[7], feed_maxlen, 'refreshed', now, hold_id, hold[7], nil,
  booking_cells(slots, units))
return {0, now, created, new_expires}
