--[[
throttle.lua: count one request of a client against its rate limit, or refuse it (GCRA,
the generic cell rate algorithm). A client may send `limit` requests at once, then one per
`interval`: the key keeps the theoretical arrival time (TAT) of the client's next request
at the steady rate. Exact across every worker and node (one key, one atomic step); a
refused request changes nothing. Touches no venue and no cell.

Input:
  KEYS[1]  rate key            the client's TAT, microseconds (gone once the client is idle)
  ARGV[1]  interval us         window / limit, rounded down: the steady-rate spacing
  ARGV[2]  window us           what the limit is counted over (60 000 000: a minute)
Output: {code, now ms, ...}
  0  OK                      requests left in the burst now, us until the whole burst is back
  60 RATE_LIMITED            us until the next request is allowed
]]

-- Microseconds: a limit of up to a million a minute still has a whole-number interval.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now_millis = math.floor(now / 1000)
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
-- How far the TAT may run ahead of now: a whole burst of `limit` requests, no more.
local tolerance = window - interval

local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if tat - now > tolerance then
  return {60, now_millis, tat - now - tolerance}
end
local next_tat = tat + interval
-- The key lives exactly as long as it matters: past its TAT the client is idle again.
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX',
  math.ceil((next_tat - now) / 1000))
return {0, now_millis, math.floor((tolerance - (next_tat - now)) / interval) + 1, next_tat - now}
