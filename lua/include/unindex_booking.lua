-- include/unindex_booking.lua: inlined by holdsvc.scripts into each script that includes it.
-- Take a booking out of the rule indexes its record says it is in (`idx`: 'c' the covers hash
-- of its first slot, 'g' its user's guest hash, 'p' its phone's guest hash), by `member`
-- ("h|<hold>" or "r|<reference>"). A key may be '' when the record is not in that index.
local function unindex_booking(idx, member, covers_key, guest_key, phone_key)
  if not idx or idx == '' then return end
  if string.find(idx, 'c', 1, true) then redis.call('HDEL', covers_key, member) end
  if string.find(idx, 'g', 1, true) then redis.call('HDEL', guest_key, member) end
  if string.find(idx, 'p', 1, true) then redis.call('HDEL', phone_key, member) end
end
