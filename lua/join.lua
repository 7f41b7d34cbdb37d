--[[
join.lua: a guest joins the waitlist of one slot (a restaurant slot, or an event's one slot).
When what was asked is free right now the new entry is offered at once, in this same step.

Input:
  The waitlist block (lua/include/waitlist_offer.lua), here all of KEYS; spec.slots[1] is the
  slot joined, and the block also names the joining user:
  KEYS[1]  venue hash          kind, max_waitlist, total_seats, max_holds_per_user, the rules
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
  KEYS[13], KEYS[14], ...      per slot of spec.slots (the joined one first): waiting zset,
                               capped zset, queue zset, live zset, users hash, covers hash
  KEYS[..]                     per slot of spec.cells: cells hash, held zset
  KEYS[..]                     per offer id of spec.offers: hold hash
  KEYS[..]                     per user of spec.users: user zset (the cap), guest hash
  ARGV[1]  entry id            new, random
  ARGV[2]  token digest        sha256 hex of the entry's Waitlist-Token
  ARGV[3]  user id
  ARGV[4]  need                party size (restaurant) or seat count (event)
  ARGV[5]  fields              JSON object: name, phone, email, section (stored as given)
  ARGV[6]  feed maxlen
  ARGV[7]  group               entries of one group fit the same free cells: the need, or
                               (an event entry naming a section) the section's place in the
                               map * 1024 + the count
  ARGV[8]  the waitlist block's JSON
Output: {code, now ms, ...}
  0  OK                      seq, position (0: offered at once), offer hold id ('' = none)
  10 VENUE_NOT_FOUND
  11 SLOT_NOT_FOUND
  31 NO_TABLE_AVAILABLE      no table of the venue could ever seat the party (-1)
  32 NOT_ENOUGH_SEATS        the event has fewer seats than asked for (-1)
  35 SLOT_IN_PAST
  70 ALREADY_WAITING         the user has a live entry for this slot: its id
  57 WAITLIST_KEYS           the block lacks keys of the slot (its span's cells), or what was
                             asked is free now and the block's users were not read: slot ids
                             JSON, cell slot ids JSON; nothing changed
  71 WAITLIST_FULL           max_waitlist entries wait already: the limit
]]

--- @include "now_ms"
--- @include "waitlist_offer"

local entry_id = ARGV[1]
local token_digest = ARGV[2]
local user_id = ARGV[3]
local need = tonumber(ARGV[4])
local fields = cjson.decode(ARGV[5])
local feed_maxlen = tonumber(ARGV[6])
local group = tonumber(ARGV[7])
local now = now_ms()
local wl = waitlist_block()
local slot = wl.spec.slots[1]
local keys = wl.slot[slot]

local venue = redis.call('HMGET', wl.venue, 'kind', 'max_waitlist', 'total_seats',
  'combinations')
if not venue[1] then return {10, now} end
local starts = tonumber(redis.call('ZSCORE', wl.slots, slot))
if not starts then return {11, now} end
if starts <= now then return {35, now} end
-- An entry no unit of the venue could ever satisfy would wait forever: refused now.
-- An event counts its places (a seat map keeps no best-fit zset); a restaurant its tables
-- and combinations.
if venue[1] == 'event' then
  if tonumber(venue[3] or '0') < need then return {32, now, -1} end
elseif redis.call('ZCOUNT', wl.fit, need * 1048576, '+inf') == 0
    and (tonumber(venue[4] or '0') == 0
      or redis.call('ZCOUNT', wl.combos_fit, need * 1048576, '+inf') == 0) then
  return {31, now, -1}
end
-- The offer made at once reads the cells of the slot's whole span: the block must have them.
local ask = waitlist_missing(now, nil, nil, {slot})
if ask then return ask end
-- Joining frees nothing: only the new entry may fit now (every older one that fits was
-- offered when its cells freed). When it does, the offer goes to the oldest fitting entry,
-- so the block must name the users heading the slot's waitlist; else no read is needed.
if not wl.spec.read then
  local section = fields.section
  if type(section) ~= 'string' then section = '' end
  if waitlist_choice(wl, waitlist_rules(wl), slot, starts, need, section, now) then
    return {57, now, cjson.encode({slot}), cjson.encode(wl.spec.cells)}
  end
end

local existing = redis.call('HGET', keys.users, user_id)
if existing then return {70, now, existing} end
local limit = tonumber(venue[2]) or 100
if redis.call('ZCARD', keys.queue) >= limit then return {71, now, limit} end

local seq = redis.call('HINCRBY', wl.venue, 'wl_seq', 1)
local entry = {id = entry_id, slot = slot, user = user_id, need = need, digest = token_digest,
  status = 'waiting', created = now, seq = seq, name = fields.name, phone = fields.phone,
  email = fields.email, section = fields.section}
if group ~= need then entry.group = group end
redis.call('HSET', wl.entries, entry_id, cjson.encode(entry))
redis.call('ZADD', keys.waiting, group * WAITLIST_NEED_SCALE + seq, entry_id)
redis.call('ZADD', keys.queue, seq, entry_id)
redis.call('ZADD', keys.live, seq, entry_id)
redis.call('HSET', keys.users, user_id, entry_id)
waitlist_slot_sync(wl, slot)
redis.call('XADD', wl.feed, 'MAXLEN', '~', feed_maxlen, '*', 'event', 'waitlisted',
  'at', string.format('%d', now), 'hold', '', 'user', user_id, 'ref', '', 'cells', '[]',
  'actor', '', 'wl', entry_id)
-- What was asked may be free right now: offered at once (older fitting entries first).
waitlist_offer(wl, now, feed_maxlen, nil)
local stored = waitlist_entry(wl, entry_id)
-- A user already at the cap is marked passed over now, so that the users named to later
-- freeing steps are those who may take an offer.
local cap = tonumber(redis.call('HGET', wl.venue, 'max_holds_per_user'))
local units = 1
if venue[1] == 'event' then units = need end
if stored.status == 'waiting' and not stored.capped
    and waitlist_held_units(wl.user_keys[user_id], now) + units > cap then
  waitlist_pass_over(wl, keys, stored, group * WAITLIST_NEED_SCALE + seq, now)
end
if stored.status == 'offered' then return {0, now, seq, 0, stored.hold} end
return {0, now, seq, redis.call('ZRANK', keys.queue, entry_id) + 1, ''}
