-- include/now_ms.lua: inlined by holdsvc.scripts into each script that includes it.
-- One clock for everyone: Redis TIME, in milliseconds.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
