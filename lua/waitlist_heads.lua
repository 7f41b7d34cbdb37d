--[[
waitlist_heads.lua: read only. The users a freeing step may offer to: the first entries of
each need waiting in one slot, oldest first. A script that frees cells of the slot is passed
their user zsets (the cap), so that every key it touches is in its KEYS.

Input:
  KEYS[1]  waiting zset        of the slot: entry id -> need * 2^32 + seq
  KEYS[2]  waitlist hash       entry id -> JSON
  ARGV[1]  per need            how many entries of each need to name
  ARGV[2]  needs               at most this many needs (the oldest-first walk stops there)
Output: {code, now ms, ...}
  0  OK                      user ids (each once)
]]

--- @include "now_ms"

local per_need = tonumber(ARGV[1])
local max_needs = tonumber(ARGV[2])
local scale = 4294967296
local now = now_ms()
local reply = {0, now}
local seen = {}
local floor = 0
for _ = 1, max_needs do
  local head = redis.call('ZRANGEBYSCORE', KEYS[1], floor, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if #head == 0 then break end
  local base = math.floor(tonumber(head[2]) / scale) * scale
  floor = base + scale
  local ids = redis.call('ZRANGEBYSCORE', KEYS[1], base, floor - 1, 'LIMIT', 0, per_need)
  for _, text in ipairs(redis.call('HMGET', KEYS[2], unpack(ids))) do
    if text then
      local user = cjson.decode(text).user
      if not seen[user] then
        seen[user] = true
        reply[#reply + 1] = user
      end
    end
  end
end
return reply
