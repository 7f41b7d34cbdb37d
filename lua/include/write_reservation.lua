-- include/write_reservation.lua: inlined by holdsvc.scripts into each script that includes it.
-- Store a new confirmed reservation and index it (by start, by phone): the record and its
-- indexes are written together, by confirm (from a hold) and book (staff), never apart.
-- `record` holds every stored field as text; `starts` is the slot start in ms.
local function write_reservation(reservation_key, by_start_key, by_phone_key, record, starts)
  local flat = {}
  for name, value in pairs(record) do
    flat[#flat + 1] = name
    flat[#flat + 1] = value
  end
  redis.call('HSET', reservation_key, unpack(flat))
  redis.call('ZADD', by_start_key, starts, record.reference)
  redis.call('SADD', by_phone_key, record.reference)
end
