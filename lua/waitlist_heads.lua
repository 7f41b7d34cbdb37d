--[[
waitlist_heads.lua: read only. The users a freeing step may offer to: in each of some slots,
the first entries of each group waiting, oldest first, and the first of each group passed over
at the cap (their cap is checked again). A script that frees cells is passed their user zsets
(the cap) and guest hashes, so that every key it touches is in its KEYS.

Input:
  KEYS[1]  waitlist hash       entry id -> JSON
  KEYS[2], KEYS[3], ...        per slot, a pair: waiting zset (entry id -> group * 2^32 + seq,
                               the entries not passed over), capped zset (the same, for the
                               entries passed over at the cap)
  ARGV[1]  per group           how many waiting entries of each group (of each slot) to name
  ARGV[2]  groups              at most this many groups per zset (the walk stops there)
  ARGV[3]  marked              how many passed-over entries of each group to name
Output: {code, now ms, ...}
  0  OK                      user ids (each once)
]]

--- @include "now_ms"

local per_group = tonumber(ARGV[1])
local max_groups = tonumber(ARGV[2])
local marked = tonumber(ARGV[3])
local scale = 4294967296
local now = now_ms()
local reply = {0, now}
local seen = {}

-- Name the users of the first `count` entries of each group of one zset: work bounded by
-- the users named, however many entries wait behind them.
local function name_heads(zset, count)
  local floor = 0
  for _ = 1, max_groups do
    local head = redis.call('ZRANGEBYSCORE', zset, floor, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if #head == 0 then break end
    local base = math.floor(tonumber(head[2]) / scale) * scale
    floor = base + scale
    local ids = redis.call('ZRANGEBYSCORE', zset, base, floor - 1, 'LIMIT', 0, count)
    for _, text in ipairs(redis.call('HMGET', KEYS[1], unpack(ids))) do
      if text then
        local user = cjson.decode(text).user
        if not seen[user] then
          seen[user] = true
          reply[#reply + 1] = user
        end
      end
    end
  end
end

for k = 2, #KEYS, 2 do
  name_heads(KEYS[k], per_group)
  name_heads(KEYS[k + 1], marked)
end
return reply
