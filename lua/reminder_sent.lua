--[[
reminder_sent.lua: record that a reservation's reminder mail was handed to the SMTP server,
only while the calling worker still holds the reminders' lease of the venue, and only if the
reminder is still the one it sent (a change of the reservation meanwhile moved it: then the
new one stays due). Touches no cell.

Input:
  KEYS[1]  lease key           the venue's reminder lease: the holder's random token, with a TTL
  KEYS[2]  reminders zset      reference -> epoch ms the reminder is due
  ARGV[1]  token               the caller's lease token
  ARGV[2]  reference           the reservation reminded
  ARGV[3]  due ms              the due time the caller read (and sent for)
Output: {code, now ms}
  0  OK                      recorded (or it had moved: kept, due at its new time)
  56 LEASE_LOST              the lease is not the caller's: nothing changed
]]
--- @include "now_ms"

local now = now_ms()
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {56, now}
end
local due = redis.call('ZSCORE', KEYS[2], ARGV[2])
if due and tonumber(due) == tonumber(ARGV[3]) then
  redis.call('ZREM', KEYS[2], ARGV[2])
end
return {0, now}
