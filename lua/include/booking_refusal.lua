-- include/booking_refusal.lua: inlined by holdsvc.scripts into each script that includes it.
-- Why a guest may not claim a slot starting at slot_start now (nil: they may): bookings
-- paused (34), slot started (35), outside min notice / max days ahead (36).
local function booking_refusal(bookings_open, min_notice, max_days, slot_start, now)
  if bookings_open ~= '1' then return 34 end
  if slot_start <= now then return 35 end
  if min_notice and slot_start < now + tonumber(min_notice) * 60000 then return 36 end
  if max_days and slot_start > now + tonumber(max_days) * 86400000 then return 36 end
  return nil
end
