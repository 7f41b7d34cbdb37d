-- include/record_units.lua: inlined by holdsvc.scripts into each script that includes it.
-- The units of a hold or reservation record: stored as a JSON array (cjson), so no character
-- of a unit id can ever split it. Records written before were comma-joined text, which never
-- starts with '[' (unit ids never did): they still read as the list they were written from.
-- holdsvc.units reads them the same way in Python.
local function record_units(text)
  if not text or text == '' then return {} end
  if string.sub(text, 1, 1) == '[' then return cjson.decode(text) end
  local out = {}
  for part in string.gmatch(text, '[^,]+') do out[#out + 1] = part end
  return out
end
