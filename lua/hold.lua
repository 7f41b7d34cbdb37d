--[[
hold.lua: put one hold on one or more cells of one slot, all or nothing.

Input:
  KEYS[1]  venue hash          settings: kind, bookings_open, hold_seconds, max_hold_seconds,
                               max_holds_per_user, min_notice_minutes, max_days_ahead
  KEYS[2]  slots zset          slot id -> start ms
  KEYS[3]  cells hash          of this slot: unit id -> state
  KEYS[4]  held zset           of this slot: unit id -> expires ms
  KEYS[5]  holds zset          live hold id -> expires ms (sweeper)
  KEYS[6]  user zset           "<hold id>|<units>" -> expires ms (the cap)
  KEYS[7]  hold hash           the new hold
  KEYS[8]  idempotency string  "<fingerprint>|<hold id>" (only used when ARGV[8] ~= '')
  KEYS[9]  units hash          unit id -> capacity
  KEYS[10] units-by-fit zset   unit id -> capacity * 2^20 + sequence
  KEYS[11] feed stream
  ARGV[1]  hold id             new, random
  ARGV[2]  token digest        sha256 hex of the hold token
  ARGV[3]  user id
  ARGV[4]  slot id
  ARGV[5]  party size          a unit fits when its capacity >= party size
  ARGV[6]  units               comma-separated unit ids asked for; '' = best fit
  ARGV[7]  count               with best fit: how many units (lowest fit score first)
  ARGV[8]  fingerprint         of user + body for the Idempotency-Key; '' = no key
  ARGV[9]  feed maxlen         approximate
Output: {code, now ms, ...}
  0  OK                      hold id, created ms, expires ms, units csv
  1  REPLAYED                hold id (same Idempotency-Key and body: the earlier hold)
  10 VENUE_NOT_FOUND
  11 SLOT_NOT_FOUND
  12 UNIT_NOT_FOUND          unit id
  30 UNIT_UNAVAILABLE        unit id, latest expires ms of a blocking hold (-1: reserved)
  31 NO_TABLE_AVAILABLE      earliest expires ms of a blocking hold (-1: none)
  32 NOT_ENOUGH_SEATS        earliest expires ms of a blocking hold (-1: none)
  33 HOLD_LIMIT_REACHED      live held units of the user, the cap
  34 BOOKINGS_PAUSED
  35 SLOT_IN_PAST
  36 OUTSIDE_BOOKING_WINDOW
  50 IDEMPOTENCY_MISMATCH    the key was used with another body
  52 NEEDS_SWEEP             hold ids of lapsed holds on the chosen cells (sweep, then retry)
]]

local hold_id = ARGV[1]
local token_digest = ARGV[2]
local user_id = ARGV[3]
local slot = ARGV[4]
local party_size = tonumber(ARGV[5])
local asked_units = split_csv(ARGV[6])
local count = tonumber(ARGV[7])
local fingerprint = ARGV[8]
local feed_maxlen = tonumber(ARGV[9])

local FIT_SCALE = 1048576
local SCAN_BATCH = 256
local now = now_ms()

local venue = redis.call('HMGET', KEYS[1], 'kind', 'bookings_open', 'hold_seconds',
  'max_hold_seconds', 'max_holds_per_user', 'min_notice_minutes', 'max_days_ahead')
local kind = venue[1]
if not kind then return {10, now} end

-- A retried request (same key, same body) gets the hold it created, whatever changed since.
if fingerprint ~= '' then
  local earlier = redis.call('GET', KEYS[8])
  if earlier then
    local sep = string.find(earlier, '|', 1, true)
    if string.sub(earlier, 1, sep - 1) ~= fingerprint then return {50, now} end
    return {1, now, string.sub(earlier, sep + 1)}
  end
end

local slot_start = tonumber(redis.call('ZSCORE', KEYS[2], slot))
if not slot_start then return {11, now} end
if venue[2] ~= '1' then return {34, now} end
if slot_start <= now then return {35, now} end
if venue[6] and slot_start < now + tonumber(venue[6]) * 60000 then return {36, now} end
if venue[7] and slot_start > now + tonumber(venue[7]) * 86400000 then return {36, now} end

local wanted = count
if #asked_units > 0 then wanted = #asked_units end

-- The cap counts live held units; members that lapsed are pruned first, by Redis time.
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now)
local held_units = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[6], 0, -1)) do
  held_units = held_units + tonumber(string.match(member, '|(%d+)$'))
end
local cap = tonumber(venue[5])
if held_units + wanted > cap then return {33, now, held_units, cap} end

local chosen = {}
local lapsed = {}
local lapsed_seen = {}
local function note_lapsed(owner)
  if not lapsed_seen[owner] then
    lapsed_seen[owner] = true
    lapsed[#lapsed + 1] = owner
  end
end

if #asked_units > 0 then
  local latest_block = nil
  local blocked_unit = nil
  local reserved_block = false
  local capacities = redis.call('HMGET', KEYS[9], unpack(asked_units))
  local states = redis.call('HMGET', KEYS[3], unpack(asked_units))
  for i, unit in ipairs(asked_units) do
    if not capacities[i] then return {12, now, unit} end
    if tonumber(capacities[i]) < party_size then return {31, now, -1} end
    local state_kind, owner, expires = parse_cell(states[i])
    if state_kind == 'r' then
      blocked_unit = blocked_unit or unit
      reserved_block = true
    elseif state_kind == 'h' and expires > now then
      blocked_unit = blocked_unit or unit
      if not latest_block or expires > latest_block then latest_block = expires end
    elseif state_kind == 'h' then
      note_lapsed(owner)
    end
    chosen[i] = unit
  end
  if blocked_unit then
    if reserved_block then latest_block = -1 end
    return {30, now, blocked_unit, latest_block}
  end
else
  -- Best fit: walk units from the smallest capacity that fits (ties: created first).
  local earliest_block = nil
  local offset = 0
  while #chosen < wanted do
    local batch = redis.call('ZRANGEBYSCORE', KEYS[10], party_size * FIT_SCALE, '+inf',
      'LIMIT', offset, SCAN_BATCH)
    if #batch == 0 then break end
    local states = redis.call('HMGET', KEYS[3], unpack(batch))
    for i, unit in ipairs(batch) do
      local state_kind, owner, expires = parse_cell(states[i])
      if state_kind == nil then
        chosen[#chosen + 1] = unit
      elseif state_kind == 'h' and expires <= now then
        chosen[#chosen + 1] = unit
        note_lapsed(owner)
      elseif state_kind == 'h' and (not earliest_block or expires < earliest_block) then
        earliest_block = expires
      end
      if #chosen == wanted then break end
    end
    offset = offset + #batch
  end
  if #chosen < wanted then
    local code = 31
    if kind == 'event' then code = 32 end
    return {code, now, earliest_block or -1}
  end
end

-- A lapsed hold on a chosen cell is expired first (its own 'expired' entry), then we retry.
if #lapsed > 0 then
  local reply = {52, now}
  for _, owner in ipairs(lapsed) do reply[#reply + 1] = owner end
  return reply
end

local expires = now + tonumber(venue[3]) * 1000
local lifetime_end = now + tonumber(venue[4]) * 1000
if expires > lifetime_end then expires = lifetime_end end
local state = held_state(hold_id, expires)
for _, unit in ipairs(chosen) do
  redis.call('HSET', KEYS[3], unit, state)
  redis.call('ZADD', KEYS[4], expires, unit)
end
local units_csv = table.concat(chosen, ',')
redis.call('HSET', KEYS[7], 'user', user_id, 'digest', token_digest, 'slot', slot,
  'units', units_csv, 'n', tostring(#chosen), 'party', tostring(party_size),
  'created', string.format('%d', now), 'expires', string.format('%d', expires),
  'refreshes', '0', 'status', 'held')
redis.call('ZADD', KEYS[5], expires, hold_id)
redis.call('ZADD', KEYS[6], expires, hold_id .. '|' .. #chosen)
if fingerprint ~= '' then
  redis.call('SET', KEYS[8], fingerprint .. '|' .. hold_id, 'PX', tonumber(venue[4]) * 1000)
end
feed_append(KEYS[11], feed_maxlen, 'held', now, hold_id, user_id, nil, cells_json(slot, chosen))
return {0, now, hold_id, now, expires, units_csv}
