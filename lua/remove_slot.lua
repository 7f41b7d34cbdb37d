--[[
remove_slot.lua: take one slot out of a restaurant's grid unless a live hold or a reservation is
on one of its cells. The check and the removal are one step, so a hold landing on the slot
comes either before it (the slot is kept) or after it (hold.lua finds no slot): never a held
cell in a removed slot.

Input:
  KEYS[1]  slots zset          slot id -> start ms
  KEYS[2]  cells hash          of the slot: unit id -> state
  KEYS[3]  held zset           of the slot: unit id -> expires ms
  ARGV[1]  slot id
Output: {code, now ms, ...}
  0  OK                      1: removed (its grid entry, cells and held set); 0: kept
  1  REPLAYED                not in the grid (removed already)
  52 NEEDS_SWEEP             hold ids of lapsed holds on its cells (sweep, then retry)
]]

--- @include "now_ms"
--- @include "parse_cell"
--- @include "sweep_reply"

local slot = ARGV[1]
local now = now_ms()

if not redis.call('ZSCORE', KEYS[1], slot) then return {1, now} end

local lapsed, seen = {}, {}
local flat = redis.call('HGETALL', KEYS[2])
for i = 2, #flat, 2 do
  local kind, owner, expires = parse_cell(flat[i])
  -- A reservation's cell (a cancel frees it) or a live hold keeps the slot, by Redis time.
  if kind == 'r' or expires > now then return {0, now, 0} end
  if not seen[owner] then
    seen[owner] = true
    lapsed[#lapsed + 1] = owner
  end
end
-- A lapsed hold ends first with its own 'expired' entry, as for a new claim.
if #lapsed > 0 then return sweep_reply(now, lapsed) end

redis.call('ZREM', KEYS[1], slot)
redis.call('DEL', KEYS[2], KEYS[3])
return {0, now, 1}
