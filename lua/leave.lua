--[[
leave.lua: the bearer of an entry's token leaves the waitlist. An open offer is released
('released' entry) and its cells are offered to the next fitting entry in this same step.
Idempotent: an entry that has ended already is answered as it is.

Input:
  KEYS[1]  hold hash           of the entry's offer, as the caller read it (any key when none)
  KEYS[2]  user zset           of the entry's user (the offer's cap)
  KEYS[3..]  the waitlist block (lua/include/waitlist_offer.lua): spec.slots[1] is the
             entry's slot, spec.users names the entry's user (its guest hash: the offer's
             rule indexes). Here:
  KEYS[3]  venue hash          KEYS[4]  units hash          KEYS[5]  units-by-fit zset
  KEYS[6]  slots zset          KEYS[7]  holds zset          KEYS[8]  feed stream
  KEYS[9]  waitlist hash       KEYS[10] seat index hash     KEYS[11] combinations hash
  KEYS[12] combinations-by-fit zset                         KEYS[13] waitlist slots zset
  KEYS[14] ended zset
  KEYS[15], KEYS[16], ...      per slot of spec.slots (the entry's first): waiting zset,
                               capped zset, queue zset, live zset, users hash, covers hash
  KEYS[..]                     per slot of spec.cells: cells hash, held zset
  KEYS[..]                     per offer id of spec.offers: hold hash
  KEYS[..]                     per user of spec.users: user zset (the cap), guest hash
  ARGV[1]  entry id
  ARGV[2]  token digest        sha256 hex of the presented Waitlist-Token
  ARGV[3]  offer hold id       as the caller read it ('' = none)
  ARGV[4]  feed maxlen
  ARGV[5]  tombstone ms        how long the released offer is remembered
  ARGV[6]  the waitlist block's JSON
Output: {code, now ms}
  0  OK                      left now ('waitlist_left' entry; 'released' for an open offer)
  1  REPLAYED                it had ended already (left, expired, confirmed): unchanged
  20 FORBIDDEN               wrong token
  54 STALE                   its offer is not the one the caller read: read, retry
  57 WAITLIST_KEYS           the block lacks keys the passed-on offer may touch: slot ids
                             JSON, cell slot ids JSON; nothing changed
  72 WAITLIST_ENTRY_NOT_FOUND
]]

--- @include "booking_slots"
--- @include "end_hold"
--- @include "feed_append"
--- @include "free_hold_cells"
--- @include "now_ms"
--- @include "record_units"
--- @include "seat_runs"
--- @include "unindex_booking"
--- @include "waitlist_offer"

local entry_id = ARGV[1]
local token_digest = ARGV[2]
local offer_id = ARGV[3]
local feed_maxlen = tonumber(ARGV[4])
local tombstone_ms = tonumber(ARGV[5])
local now = now_ms()
local wl = waitlist_block()
local slot = wl.spec.slots[1]

local entry = waitlist_entry(wl, entry_id)
if not entry or entry.slot ~= slot then return {72, now} end
-- Digests of random tokens; Lua interns every string, so == takes the same time for any two.
if entry.digest ~= token_digest then return {20, now} end
if entry.status ~= 'waiting' and entry.status ~= 'offered' then return {1, now} end
if entry.status == 'offered' and entry.hold ~= offer_id then return {54, now} end

-- An open offer is let go like a released hold: every slot of its span, passed on below.
local hold, span = nil, nil
if entry.status == 'offered' then
  hold = redis.call('HMGET', KEYS[1], 'status', 'expires', 'units', 'n', 'slots', 'idx')
  if hold[1] == 'held' then span = booking_slots(slot, hold[5]) end
end
if span then
  local ask = waitlist_missing(now, span[1], span[#span], {slot})
  if ask then return ask end
end

waitlist_settle(wl, entry, 'left', now)
redis.call('XADD', wl.feed, 'MAXLEN', '~', feed_maxlen, '*', 'event', 'waitlist_left',
  'at', string.format('%d', now), 'hold', entry.hold or '', 'user', entry.user, 'ref', '',
  'cells', '[]', 'actor', '', 'wl', entry_id)
if span then
  local event = 'released'
  if tonumber(hold[2]) <= now then event = 'expired' end
  local units = record_units(hold[3])
  local prefix = 'h|' .. offer_id .. '|'
  -- The free-run index learns of the freed seats in this same step.
  -- (A slot removed from the grid since has no cells left to free.)
  if wl.cells[slot] then seat_runs_release(wl.seat_index, wl.cells[slot][1], units, prefix) end
  for _, id in ipairs(span) do
    local pair = wl.cells[id]
    if pair then free_hold_cells(pair[1], pair[2], offer_id, units) end
  end
  unindex_booking(hold[6], 'h|' .. offer_id, wl.slot[slot].covers, wl.guest_keys[entry.user],
    '')
  end_hold(KEYS[1], wl.holds, KEYS[2], offer_id, hold[4], event, tombstone_ms)
  feed_append(wl.feed, feed_maxlen, event, now, offer_id, entry.user, nil,
    booking_cells(span, units))
  waitlist_offer(wl, now, feed_maxlen, nil)
end
return {0, now}
