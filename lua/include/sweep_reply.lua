-- include/sweep_reply.lua: inlined by holdsvc.scripts into each script that includes it.
-- A lapsed hold on a chosen cell must end first (its own 'expired' entry): ask to sweep it.
local function sweep_reply(now, lapsed)
  local reply = {52, now}
  for _, owner in ipairs(lapsed) do reply[#reply + 1] = owner end
  return reply
end
