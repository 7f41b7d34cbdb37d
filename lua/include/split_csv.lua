-- include/split_csv.lua: inlined by holdsvc.scripts into each script that includes it.
local function split_csv(text)
  local out = {}
  if text == nil or text == '' then return out end
  for part in string.gmatch(text, '[^,]+') do out[#out + 1] = part end
  return out
end
