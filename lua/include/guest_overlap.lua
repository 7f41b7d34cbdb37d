-- include/guest_overlap.lua: inlined by holdsvc.scripts into each script that includes it.
-- Whether a guest's indexed bookings overlap the half-open time [starts, ends) (DESIGN.md 10).
-- A guest hash maps "h|<hold>" -> "<start ms>|<end ms>|<expires ms>" (a lapsed hold does not
-- count: invariant 7) and "r|<reference>" -> "<start ms>|<end ms>". `own`: an entry left out
-- (the booking itself, when it moves or is confirmed).
local function guest_overlap(guest_key, starts, ends, now, own)
  local entries = redis.call('HGETALL', guest_key)
  for i = 1, #entries, 2 do
    if entries[i] ~= own then
      local s, e, x = string.match(entries[i + 1], '^(%d+)|(%d+)|?(%d*)$')
      if tonumber(s) < ends and starts < tonumber(e) and (x == '' or tonumber(x) > now) then
        return true
      end
    end
  end
  return false
end
