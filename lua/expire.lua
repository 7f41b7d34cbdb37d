--[[
expire.lua: the sweeper ends one lapsed hold. Re-checks everything, so any number of
workers may sweep the same hold at once: exactly one of them expires it.

Input:
  KEYS[1]  hold hash
  KEYS[2]  cells hash          of the hold's slot
  KEYS[3]  held zset           of the hold's slot
  KEYS[4]  holds zset          live hold id -> expires ms
  KEYS[5]  user zset           "<hold id>|<units>" -> expires ms
  KEYS[6]  feed stream
  KEYS[n..]                    the waitlist block (lua/include/waitlist_offer.lua), last
  ARGV[1]  hold id
  ARGV[2]  feed maxlen
  ARGV[3]  tombstone ms        how long the ended hold is remembered
  ARGV[last]                   the waitlist block's JSON ('' = none)
Output: {code, now ms}
  0  OK                      expired now ('expired' entry)
  1  REPLAYED                not live any more (already ended, or gone): only the index cleaned
  53 NOT_EXPIRED             still live (refreshed since it was picked)
]]

--- @include "cells_json"
--- @include "end_hold"
--- @include "feed_append"
--- @include "free_hold_cells"
--- @include "now_ms"
--- @include "record_units"
--- @include "waitlist_offer"

local hold_id = ARGV[1]
local feed_maxlen = tonumber(ARGV[2])
local tombstone_ms = tonumber(ARGV[3])
local now = now_ms()

local hold = redis.call('HMGET', KEYS[1], 'status', 'expires', 'units', 'n', 'user', 'slot')
if hold[1] ~= 'held' then
  -- An ended or vanished hold must not stay in the sweeper's index.
  redis.call('ZREM', KEYS[4], hold_id)
  return {1, now}
end
if tonumber(hold[2]) > now then return {53, now} end

local units = record_units(hold[3])
free_hold_cells(KEYS[2], KEYS[3], hold_id, units)
end_hold(KEYS[1], KEYS[4], KEYS[5], hold_id, hold[4], 'expired', tombstone_ms)
feed_append(KEYS[6], feed_maxlen, 'expired', now, hold_id, hold[5], nil,
  cells_json(hold[6], units))
-- The freed cells go to the waitlist in this same step (an offer's entry expires with it).
waitlist_after_free(now, feed_maxlen, KEYS[1])
return {0, now}
