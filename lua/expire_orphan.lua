--[[
expire_orphan.lua: the sweeper frees the cells of a lapsed hold whose record is gone (evicted,
or deleted by hand). Without it those cells would name a hold nobody can end: every claim on
them would ask for a sweep that cannot happen. Re-checks everything, so any number of
workers may run it at once: the record is still gone, and each cell still names this hold
and has lapsed; only those cells are freed.

Input:
  KEYS[1]  hold hash           of the orphaned hold (must not exist)
  KEYS[2]  holds zset          hold id -> expires ms (the sweeper's index)
  KEYS[3]  user zset           "<hold id>|<units>" -> expires ms of the hold's user ("" user
                               when unknown: a key nobody uses)
  KEYS[4]  feed stream
  KEYS[5], KEYS[6], ...        per slot that may hold its cells: cells hash, held zset
  KEYS[first-1]                seat index hash, just before the waitlist block (keys.seat_index)
  KEYS[n..]                    the waitlist block (lua/include/waitlist_offer.lua), last
  ARGV[1]  hold id
  ARGV[2]  feed maxlen
  ARGV[3]  user id             "" when unknown
  ARGV[4], ARGV[5], ...        per slot, in the order of KEYS: slot id, JSON array of unit ids
  ARGV[last]                   the waitlist block's JSON
Output: {code, now ms}
  0  OK                      freed the cells still naming it ('expired' entry listing them)
  1  REPLAYED                nothing of it left to free (or its record exists): index cleaned
  57 WAITLIST_KEYS           waiting entries the freed cells may fit need keys the block
                             lacks: slot ids JSON, cell slot ids JSON; nothing changed
]]

--- @include "feed_append"
--- @include "now_ms"
--- @include "seat_runs"
--- @include "waitlist_offer"

local hold_id = ARGV[1]
local feed_maxlen = tonumber(ARGV[2])
local user_id = ARGV[3]
local now = now_ms()

-- A hold with a record is the ordinary expire's to end, with its own checks.
if redis.call('EXISTS', KEYS[1]) == 1 then return {1, now} end

-- Before any write: the block must hold every key the hand-off to the waitlist may touch.
local first_slot, last_slot = nil, nil
for i = 4, #ARGV - 1, 2 do
  first_slot = first_slot or ARGV[i]
  last_slot = ARGV[i]
end
if first_slot then
  local ask = waitlist_missing(now, first_slot, last_slot, nil)
  if ask then return ask end
end
local prefix = 'h|' .. hold_id .. '|'
local freed = {}
local seat_index = KEYS[waitlist_first_key() - 1]
for i = 5, waitlist_first_key() - 2, 2 do
  local slot = ARGV[i - 1]
  for _, unit in ipairs(cjson.decode(ARGV[i])) do
    local state = redis.call('HGET', KEYS[i], unit)
    -- Only a cell that still names this hold, and whose time is up, is freed.
    if state and string.sub(state, 1, #prefix) == prefix
        and tonumber(string.sub(state, #prefix + 1)) <= now then
      redis.call('HDEL', KEYS[i], unit)
      redis.call('ZREM', KEYS[i + 1], unit)
      freed[#freed + 1] = {slot = slot, unit = unit}
      -- The free-run index learns of the freed seat in this same step.
      seat_runs_freed(seat_index, {unit})
    end
  end
end

redis.call('ZREM', KEYS[2], hold_id)
-- Its member in the user's cap set is "<hold id>|<units>": found by the hold id alone.
for _, member in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  if string.sub(member, 1, #hold_id + 1) == hold_id .. '|' then
    redis.call('ZREM', KEYS[3], member)
  end
end
if #freed == 0 then return {1, now} end
feed_append(KEYS[4], feed_maxlen, 'expired', now, hold_id, user_id, nil, cjson.encode(freed))
-- The freed cells (of the block's slot) go to the waitlist in this same step.
waitlist_after_free(now, feed_maxlen, nil)
return {0, now}
