--[[
available.lua: how many units of one slot are free right now (read-only), in one snapshot.
Free = every unit, less the cells held or reserved, plus the held cells that have lapsed
(a lapsed hold is free for everyone at once, swept or not).

Input:
  KEYS[1]  cells hash          of the slot: unit id -> state
  KEYS[2]  held zset           of the slot: unit id -> expires ms
  KEYS[3]  units hash          unit id -> capacity
Output: {code, now ms, ...}
  0  OK                      free units, total units
]]

--- @include "now_ms"

local now = now_ms()
local total = redis.call('HLEN', KEYS[3])
local taken = redis.call('HLEN', KEYS[1])
local lapsed = redis.call('ZCOUNT', KEYS[2], '-inf', now)
return {0, now, total - taken + lapsed, total}
