--[[
cancel.lua: cancel a reservation; its cells are free at once. Idempotent. The caller has
already proven the manage token or an admin token (compared in constant time in Python).

Input:
  KEYS[1]  reservation hash
  KEYS[2]  cells hash          of the reservation's slot
  KEYS[3]  feed stream
  ARGV[1]  reference
  ARGV[2]  feed maxlen
Output: {code, now ms}
  0  OK                      cancelled now ('cancelled' entry)
  1  REPLAYED                it was cancelled already: unchanged
  14 RESERVATION_NOT_FOUND
]]

--- @include "cells_json"
--- @include "feed_append"
--- @include "now_ms"
--- @include "record_units"

local reference = ARGV[1]
local feed_maxlen = tonumber(ARGV[2])
local now = now_ms()

local reservation = redis.call('HMGET', KEYS[1], 'status', 'units', 'slot', 'hold', 'user')
if not reservation[1] then return {14, now} end
if reservation[1] == 'cancelled' then return {1, now} end

local units = record_units(reservation[2])
local state = 'r|' .. reference
for _, unit in ipairs(units) do
  -- Free only what is still ours (a staff move may have changed the cell since).
  if redis.call('HGET', KEYS[2], unit) == state then redis.call('HDEL', KEYS[2], unit) end
end
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'cancelled_at', string.format('%d', now))
feed_append(KEYS[3], feed_maxlen, 'cancelled', now, reservation[4], reservation[5], reference,
  cells_json(reservation[3], units))
return {0, now}
