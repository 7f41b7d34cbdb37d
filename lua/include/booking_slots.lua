-- include/booking_slots.lua: inlined by holdsvc.scripts into each script that includes it.
-- The grid slots a booking's record spans, in order: 'slots' (a JSON array, written only for a
-- booking of several slots, DESIGN.md 8) or its one 'slot'.
local function booking_slots(slot, slots_json)
  if slots_json and slots_json ~= '' then return cjson.decode(slots_json) end
  return {slot}
end
