--[[
waitlist_heads.lua: read only. The users a freeing step may offer to: the first entries of
each need waiting in each of some slots, oldest first (past those passed over at the cap). A
script that frees cells is passed their user zsets (the cap) and guest hashes, so that every
key it touches is in its KEYS.

Input:
  KEYS[1]  waitlist hash       entry id -> JSON
  KEYS[2], KEYS[3], ...        per slot: waiting zset (entry id -> need * 2^32 + seq)
  ARGV[1]  per need            how many entries of each need (of each slot) to name
  ARGV[2]  needs               at most this many needs per slot (the walk stops there)
  ARGV[3]  marked              entries passed over at the cap are named among the first this
                               many of a need (their cap is checked again); past them, skipped
Output: {code, now ms, ...}
  0  OK                      user ids (each once)
]]

--- @include "now_ms"

local per_need = tonumber(ARGV[1])
local max_needs = tonumber(ARGV[2])
local capped_named = tonumber(ARGV[3])
local scale = 4294967296
local now = now_ms()
local reply = {0, now}
local seen = {}
for k = 2, #KEYS do
  local waiting = KEYS[k]
  local floor = 0
  for _ = 1, max_needs do
    local head = redis.call('ZRANGEBYSCORE', waiting, floor, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if #head == 0 then break end
    local base = math.floor(tonumber(head[2]) / scale) * scale
    floor = base + scale
    -- The first `per_need` entries not passed over at the cap (and the marked ones among the
    -- first `marked`): work bounded by the marked entries the offer's walk skips too.
    local from, named, scanned = base, 0, 0
    while named < per_need do
      -- Paged by score (not offset), so each page costs the same however deep the walk.
      local page = redis.call('ZRANGEBYSCORE', waiting, from, floor - 1, 'WITHSCORES',
        'LIMIT', 0, 64)
      if #page == 0 then break end
      from = '(' .. page[#page]
      local ids = {}
      for i = 1, #page, 2 do ids[#ids + 1] = page[i] end
      for _, text in ipairs(redis.call('HMGET', KEYS[1], unpack(ids))) do
        if text then
          local entry = cjson.decode(text)
          scanned = scanned + 1
          if not entry.capped then named = named + 1 end
          if (not entry.capped or scanned <= capped_named) and not seen[entry.user] then
            seen[entry.user] = true
            reply[#reply + 1] = entry.user
          end
          if named >= per_need then break end
        end
      end
    end
  end
end
return reply
