--[[
leave.lua: the bearer of an entry's token leaves the waitlist. An open offer is released
('released' entry) and its cells are offered to the next fitting entry in this same step.
Idempotent: an entry that has ended already is answered as it is.

Input:
  KEYS[1]  hold hash           of the entry's offer, as the caller read it (any key when none)
  KEYS[2]  user zset           of the entry's user (the offer's cap)
  KEYS[3..]  the waitlist block of the entry's slot (lua/include/waitlist_offer.lua)
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
  72 WAITLIST_ENTRY_NOT_FOUND
]]

--- @include "end_hold"
--- @include "feed_append"
--- @include "free_hold_cells"
--- @include "now_ms"
--- @include "record_units"
--- @include "waitlist_offer"

local entry_id = ARGV[1]
local token_digest = ARGV[2]
local offer_id = ARGV[3]
local feed_maxlen = tonumber(ARGV[4])
local tombstone_ms = tonumber(ARGV[5])
local now = now_ms()
local wl = waitlist_block()

local entry = waitlist_entry(wl, entry_id)
if not entry or entry.slot ~= wl.slot then return {72, now} end
-- Digests of random tokens; Lua interns every string, so == takes the same time for any two.
if entry.digest ~= token_digest then return {20, now} end
if entry.status ~= 'waiting' and entry.status ~= 'offered' then return {1, now} end
if entry.status == 'offered' and entry.hold ~= offer_id then return {54, now} end

local was = entry.status
waitlist_settle(wl, entry, 'left', now)
redis.call('XADD', wl.feed, 'MAXLEN', '~', feed_maxlen, '*', 'event', 'waitlist_left',
  'at', string.format('%d', now), 'hold', entry.hold or '', 'user', entry.user, 'ref', '',
  'cells', '[]', 'actor', '', 'wl', entry_id)
if was == 'offered' then
  local hold = redis.call('HMGET', KEYS[1], 'status', 'expires', 'units', 'n')
  if hold[1] == 'held' then
    -- The open offer is let go like a released hold, and passed on below.
    local event = 'released'
    if tonumber(hold[2]) <= now then event = 'expired' end
    local units = record_units(hold[3])
    free_hold_cells(wl.cells, wl.held, offer_id, units)
    end_hold(KEYS[1], wl.holds, KEYS[2], offer_id, hold[4], event, tombstone_ms)
    feed_append(wl.feed, feed_maxlen, event, now, offer_id, entry.user, nil,
      cells_json(wl.slot, units))
    waitlist_offer(wl, now, feed_maxlen, nil)
  end
end
return {0, now}
