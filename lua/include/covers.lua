-- include/covers.lua: inlined by holdsvc.scripts into each script that includes it.
-- The covers starting in one slot (DESIGN.md 10), from the slot's covers hash: "h|<hold>" ->
-- "<party>|<expires ms>" for holds (a lapsed one counts no more: invariant 7), "r|<reference>"
-- -> "<party>" for reservations not cancelled. `own`: an entry left out (a booking moving).
local function covers(covers_key, now, own)
  local total = 0
  local entries = redis.call('HGETALL', covers_key)
  for i = 1, #entries, 2 do
    if entries[i] ~= own then
      local party, expires = string.match(entries[i + 1], '^(%d+)|?(%d*)$')
      if expires == '' or tonumber(expires) > now then total = total + tonumber(party) end
    end
  end
  return total
end
