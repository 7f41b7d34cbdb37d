--[[
index_booking.lua: put one existing hold or reservation into the rule indexes a rule just
switched on needs (DESIGN.md 10): the covers hash of its first slot (max_covers_per_slot),
its user's and its phone's guest hashes (one_booking_per_guest). Re-checks the record here, so
a booking that ended or moved since the caller read it is never indexed: the scripts that end
or move it later take it out of exactly what its `idx` names.

Input:
  KEYS[1]  record hash         the hold or the reservation
  KEYS[2]  covers hash         of the slot the caller read
  KEYS[3]  guest hash          of its user
  KEYS[4]  guest hash          of the phone the caller read (reservations)
  KEYS[5]  slots zset          slot id -> start ms
  KEYS[6]  venue hash          slot_minutes, max_covers_per_slot, one_booking_per_guest
  ARGV[1]  kind                'h' a hold, 'r' a reservation
  ARGV[2]  id                  hold id or reference
  ARGV[3]  expected slot       what the caller read
  ARGV[4]  expected phone      what the caller read ('' for holds)
Output: {code, now ms}
  0  OK                      indexed where a rule on asks for it
  1  REPLAYED                nothing to do: ended, cancelled, or already indexed
  54 STALE                   it moved, or its phone changed, since the caller read it: read, retry
]]

--- @include "booking_slots"
--- @include "now_ms"

local kind = ARGV[1]
local member = kind .. '|' .. ARGV[2]
local now = now_ms()

local rec = redis.call('HMGET', KEYS[1], 'status', 'slot', 'slots', 'party', 'user', 'phone',
  'expires', 'idx', 'starts', 'stops', 'ends')
if not rec[1] then return {1, now} end
if kind == 'h' and (rec[1] ~= 'held' or tonumber(rec[7]) <= now) then return {1, now} end
if kind == 'r' and rec[1] == 'cancelled' then return {1, now} end
if rec[2] ~= ARGV[3] or (kind == 'r' and rec[6] ~= ARGV[4]) then return {54, now} end

local venue = redis.call('HMGET', KEYS[6], 'slot_minutes', 'max_covers_per_slot',
  'one_booking_per_guest')
local starts = tonumber(rec[9]) or tonumber(redis.call('ZSCORE', KEYS[5], rec[2]))
if not starts then return {1, now} end
local ends = tonumber(rec[10] or rec[11])
if kind == 'h' then ends = tonumber(rec[10]) end
if not ends then
  ends = starts + #booking_slots(rec[2], rec[3]) * tonumber(venue[1] or '60') * 60000
end
local span = string.format('%d|%d', starts, ends)
if kind == 'h' then span = span .. '|' .. rec[7] end

local idx = rec[8] or ''
local added = idx
if tonumber(venue[2] or '0') > 0 and not string.find(idx, 'c', 1, true) then
  local value = rec[4]
  if kind == 'h' then value = value .. '|' .. rec[7] end
  redis.call('HSET', KEYS[2], member, value)
  added = added .. 'c'
end
if venue[3] == '1' then
  if rec[5] and rec[5] ~= '' and not string.find(idx, 'g', 1, true) then
    redis.call('HSET', KEYS[3], member, span)
    added = added .. 'g'
  end
  if kind == 'r' and not string.find(idx, 'p', 1, true) then
    redis.call('HSET', KEYS[4], member, span)
    added = added .. 'p'
  end
end
if added == idx then return {1, now} end
redis.call('HSET', KEYS[1], 'idx', added)
return {0, now}
