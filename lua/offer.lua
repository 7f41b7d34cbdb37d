--[[
offer.lua: offer the free cells of one slot's reach to its waitlist, as a freeing step does
(lua/include/waitlist_offer.lua). Called when capacity grows without any cell being freed (a
table added or enlarged, a combination made, booking rules relaxed): the entries that now fit
are offered their cells in this step, oldest first.

Input:
  The waitlist block (lua/include/waitlist_offer.lua), here all of KEYS; spec.slots[1] is the
  slot whose reach is offered:
  KEYS[1]  venue hash          the rules, max_holds_per_user, offer_seconds
  KEYS[2]  units hash          unit id -> capacity
  KEYS[3]  units-by-fit zset   unit id -> capacity * 2^20 + sequence
  KEYS[4]  slots zset          slot id -> start ms
  KEYS[5]  holds zset          live hold id -> expires ms
  KEYS[6]  feed stream
  KEYS[7]  waitlist hash       entry id -> JSON
  KEYS[8]  seat index hash     of a seat-map event (keys.seat_index)
  KEYS[9]  combinations hash   combination id -> JSON {tables, capacity}
  KEYS[10] combinations-by-fit zset  id -> capacity * 2^20 + sequence
  KEYS[11] waitlist slots zset slot id -> start ms, for each slot with a waiting entry
  KEYS[12] ended zset          ended entry id -> ended ms
  KEYS[13], KEYS[14], ...      per slot of spec.slots: waiting zset, capped zset, queue zset,
                               live zset, users hash, covers hash
  KEYS[..]                     per slot of spec.cells: cells hash, held zset
  KEYS[..]                     per offer id of spec.offers: hold hash
  KEYS[..]                     per user of spec.users: user zset (the cap), guest hash
  ARGV[1]  feed maxlen
  ARGV[2]  the waitlist block's JSON
Output: {code, now ms, ...}
  0  OK                      how many offers were made
  57 WAITLIST_KEYS           waiting entries in the reach need keys the block lacks: slot ids
                             JSON, cell slot ids JSON; nothing changed
]]

--- @include "now_ms"
--- @include "waitlist_offer"

local feed_maxlen = tonumber(ARGV[1])
local now = now_ms()
local wl = waitlist_block()
local slot = wl.spec.slots[1]
-- Every waiting entry whose span may hold the slot is in reach, as when its cells are freed.
local ask = waitlist_missing(now, slot, slot, {slot})
if ask then return ask end
return {0, now, waitlist_offer(wl, now, feed_maxlen, nil)}
