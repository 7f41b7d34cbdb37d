--[[
seat_counts.lua: read a seat map's free counts in one consistent snapshot (changes nothing).
The index counts a lapsed hold's seats as taken until the sweeper ends it; every read treats
them as free, so the units of lapsed holds come back with the counts.

Input:
  KEYS[1]  seat index hash     the event's map and free-run index (keys.seat_index)
  KEYS[2]  held zset           of the event's slot: unit id -> expires ms
  ARGV[1..] index fields       to read (A:<section>, R:<row key>)
Output: {code, now ms, ...}
  0  OK                      {values of the fields, in order}, {units of lapsed holds}
]]

--- @include "now_ms"

local now = now_ms()
local values = {}
-- In chunks: unpack takes a few thousand values at most.
for first = 1, #ARGV, 4000 do
  local last = math.min(first + 3999, #ARGV)
  local got = redis.call('HMGET', KEYS[1], unpack(ARGV, first, last))
  for i = 1, last - first + 1 do values[#values + 1] = got[i] or '' end
end
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
return {0, now, values, lapsed}
