--[[
add_slots.lua: add slots to a restaurant's grid, leaving out every slot of a closed date, in one
step with the closure check: once a closure is recorded, no grid step creates a slot on its dates.
Idempotent (ZADD NX), so any number of workers may add the same slots at once.

Input:
  KEYS[1]  venue hash          kind, grid_version, grid_filled (the rolling grid's marker)
  KEYS[2]  slots zset          slot id -> start ms
  KEYS[3]  closures hash       first closed date -> "<last closed date>" or "<last>|<reason>"
  ARGV[1]  grid version        the venue's grid_version the slots were computed under
  ARGV[2]  filled through      'YYYY-MM-DD' the rolling grid has filled up to now; '' = none
  ARGV[3]  slot id             then its start ms in ARGV[4]; more pairs may follow
Output: {code, now ms, ...}
  0  OK                      slots created, slots in the grid now
  10 VENUE_NOT_FOUND
  54 STALE                   the schedule changed since the slots were computed: compute again
]]

--- @include "now_ms"

local version = ARGV[1]
local filled_through = ARGV[2]
local now = now_ms()

local venue = redis.call('HMGET', KEYS[1], 'kind', 'grid_version', 'grid_filled')
if not venue[1] then return {10, now} end
-- Slots computed from a week that has been changed since are not added: the caller computes
-- them again from the new one.
if (venue[2] or '0') ~= version then return {54, now} end

local closed = {}
local flat = redis.call('HGETALL', KEYS[3])
for i = 1, #flat, 2 do closed[#closed + 1] = {flat[i], string.sub(flat[i + 1], 1, 10)} end

-- Dates compare as text (YYYY-MM-DD); a slot's date is its local start date (its id's).
local function is_closed(day)
  for _, range in ipairs(closed) do
    if range[1] <= day and day <= range[2] then return true end
  end
  return false
end

local created = 0
for i = 3, #ARGV - 1, 2 do
  local slot = ARGV[i]
  if not is_closed(string.sub(slot, 1, 10)) then
    created = created + redis.call('ZADD', KEYS[2], 'NX', ARGV[i + 1], slot)
  end
end

-- The marker only moves forward within one grid version, so workers filling at once never
-- set it back.
if filled_through ~= '' then
  local prefix = version .. '|'
  local marker = venue[3]
  local ahead = marker and string.sub(marker, 1, #prefix) == prefix
    and string.sub(marker, #prefix + 1) >= filled_through
  if not ahead then redis.call('HSET', KEYS[1], 'grid_filled', prefix .. filled_through) end
end
return {0, now, created, redis.call('ZCARD', KEYS[2])}
