--[[
consumer_save.lua: record where one feed consumer (a webhook, the mailer) stands in its
venue's feed, only while the calling worker still holds the consumer's lease, and renew or
release that lease in the same step. A worker whose lease lapsed (it was too slow, or another
worker took over after it seemed dead) can neither move the position nor take the lease back:
the position only moves forward under the one lease holder, so entries go out in feed order
and never from two workers at once. Touches no cell.

Input:
  KEYS[1]  lease key           the consumer's lease: the holder's random token, with a TTL
  KEYS[2]  consumers hash      consumer name -> its position (JSON)
  ARGV[1]  token               the caller's lease token
  ARGV[2]  name                the consumer's field in the hash
  ARGV[3]  position            the new position (JSON: cursor, attempt, next ms), "" to keep it
  ARGV[4]  lease ms            renew the lease for this long; 0 releases it
Output: {code, now ms}
  0  OK                      saved (and the lease renewed or released)
  56 LEASE_LOST              the lease is not the caller's: nothing changed
]]
--- @include "now_ms"

local now = now_ms()
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {56, now}
end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
end
local lease_ms = tonumber(ARGV[4])
if lease_ms > 0 then
  redis.call('PEXPIRE', KEYS[1], lease_ms)
else
  redis.call('DEL', KEYS[1])
end
return {0, now}
