--[[
repair.lua: free one cell that stays reserved by a reservation that does not own it (the
audit's cell_owner: cancelled, missing, or claiming another cell), as `holdsvc audit --repair`
asks. Checks that condition again here, so a cell claimed or owned again since the audit read
it is left as it is.

Input:
  KEYS[1]  cells hash          of the slot
  KEYS[2]  reservation hash    the reservation the audit saw in the cell
  KEYS[3]  feed stream
  KEYS[4]  seat index hash     of a seat-map event (keys.seat_index; else absent)
  ARGV[1]  slot id
  ARGV[2]  unit id
  ARGV[3]  reference           the reservation the audit saw in the cell
  ARGV[4]  feed maxlen         (the feed's actor is 'admin': only operators repair)
Output: {code, now ms}
  0  OK                      freed ('changed' entry of that reference, the freed cell)
  1  REPLAYED                not stuck (any more): unchanged
]]

--- @include "booking_slots"
--- @include "cells_json"
--- @include "feed_append"
--- @include "now_ms"
--- @include "record_units"
--- @include "seat_runs"

local slot = ARGV[1]
local unit = ARGV[2]
local reference = ARGV[3]
local feed_maxlen = tonumber(ARGV[4])
local now = now_ms()

if redis.call('HGET', KEYS[1], unit) ~= 'r|' .. reference then return {1, now} end
local res = redis.call('HMGET', KEYS[2], 'status', 'slot', 'units', 'hold', 'user', 'slots')
if res[1] and res[1] ~= 'cancelled' then
  for _, spanned in ipairs(booking_slots(res[2], res[6])) do
    for _, owned in ipairs(record_units(res[3])) do
      -- A live reservation that claims this very cell owns it: nothing is stuck.
      if spanned == slot and owned == unit then return {1, now} end
    end
  end
end

-- The free-run index learns of the freed seat in this same step.
seat_runs_freed(KEYS[4], {unit})
redis.call('HDEL', KEYS[1], unit)
feed_append(KEYS[3], feed_maxlen, 'changed', now, res[4], res[5], reference,
  cells_json(slot, {unit}), 'admin')
return {0, now}
