--[[
archive.lua: remove one slot that ended before a cutoff, with its cells, its held set, its
reservations and their index entries, in one step. The caller has already written the slot
and its reservations to the archive (holdsvc archive); this script removes exactly what the
caller wrote: if anything of the slot changed since the caller read it, it answers STALE and
changes nothing (read, write, retry). A slot with a hold on it is never removed.

Input:
  KEYS[1]      venue hash        kind, slot_minutes (no slot_minutes: the slot ends at its start)
  KEYS[2]      slots zset        slot id -> start ms
  KEYS[3]      cells hash        of the slot
  KEYS[4]      held zset         of the slot
  KEYS[5]      by-start zset     reference -> slot start ms
  KEYS[6..5+n] reservation hash  one per entry of ARGV[3].reservations, in that order
  KEYS[6+n..]  by-phone set      one per distinct phone; ARGV[3].reservations[i].phone is
                                 its index (1-based) among these
  KEYS[last-8] waitlist hash     entry id -> JSON
  KEYS[last-7] ended zset        ended entry id -> ended ms
  KEYS[last-6] waitlist slots    zset: slot id -> start ms, for slots with waiting entries
  KEYS[last-5] waiting zset      of the slot (the waitlist's keys of the slot, removed with it)
  KEYS[last-4] capped zset       of the slot
  KEYS[last-3] queue zset        of the slot
  KEYS[last-2] live zset         of the slot: its entries still waiting end ('expired')
  KEYS[last-1] users hash        of the slot
  KEYS[last]   seat index hash   of a seat-map event (keys.seat_index; else absent)
  ARGV[1]  slot id
  ARGV[2]  cutoff ms           the slot must have ended by then (and by Redis TIME)
  ARGV[3]  expected            JSON {"cells": {unit: state}, "reservations": [{"ref": reference,
                               "phone": index, "fields": {field: value}}]}: what the caller
                               read and wrote, every reservation starting in the slot
Output: {code, now ms, ...}
  0  OK                      archived: how many reservations were removed
  10 VENUE_NOT_FOUND
  11 SLOT_NOT_FOUND          not in the grid (archived by someone else, or never there)
  30 UNIT_UNAVAILABLE        unit id, latest expires ms of a live hold on the slot: kept
  52 NEEDS_SWEEP             hold ids of lapsed holds on the slot (sweep, then read again)
  53 NOT_EXPIRED             the slot has not ended by the cutoff or by now: unchanged
  54 STALE                   the slot or its reservations changed since the caller read them
]]

--- @include "now_ms"
--- @include "parse_cell"
--- @include "seat_runs"
--- @include "sweep_reply"
--- @include "waitlist_ended"

local slot = ARGV[1]
local cutoff = tonumber(ARGV[2])
local expected = cjson.decode(ARGV[3])
local now = now_ms()

local venue = redis.call('HMGET', KEYS[1], 'kind', 'slot_minutes')
if not venue[1] then return {10, now} end
local starts = tonumber(redis.call('ZSCORE', KEYS[2], slot))
if not starts then return {11, now} end
local ends = starts
if venue[2] then ends = starts + tonumber(venue[2]) * 60000 end
-- Redis TIME too: a cutoff in the future must not remove a slot that has not ended yet.
if ends > cutoff or ends > now then return {53, now} end

-- Holds: a live one keeps the slot; a lapsed one is swept first (its own 'expired' entry).
local cells = redis.call('HGETALL', KEYS[3])
local live_unit, live_until, lapsed, seen = nil, nil, {}, {}
for i = 1, #cells, 2 do
  local kind, owner, expires = parse_cell(cells[i + 1])
  if kind == 'h' and expires > now then
    if not live_until or expires > live_until then live_unit, live_until = cells[i], expires end
  elseif kind == 'h' and not seen[owner] then
    seen[owner] = true
    lapsed[#lapsed + 1] = owner
  end
end
if live_unit then return {30, now, live_unit, live_until} end
if #lapsed > 0 then return sweep_reply(now, lapsed) end

-- Remove only what the caller wrote: the cells, the slot's reservations and their fields.
local function same_hash(flat, wanted)
  local count = 0
  for i = 1, #flat, 2 do
    if wanted[flat[i]] ~= flat[i + 1] then return false end
    count = count + 1
  end
  for _ in pairs(wanted) do count = count - 1 end
  return count == 0
end
if not same_hash(cells, expected.cells) then return {54, now} end
local reservations = expected.reservations
local n = #reservations
local starting = redis.call('ZRANGEBYSCORE', KEYS[5], starts, starts)
if #starting ~= n then return {54, now} end
local listed = {}
for i, reservation in ipairs(reservations) do
  listed[reservation.ref] = true
  if not same_hash(redis.call('HGETALL', KEYS[5 + i]), reservation.fields) then
    return {54, now}
  end
end
for _, reference in ipairs(starting) do
  if not listed[reference] then return {54, now} end
end

for i, reservation in ipairs(reservations) do
  redis.call('DEL', KEYS[5 + i])
  redis.call('ZREM', KEYS[5], reservation.ref)
  redis.call('SREM', KEYS[5 + n + reservation.phone], reservation.ref)
end
-- The free-run index learns of the freed seats in this same step (KEYS[#KEYS]).
local freed_units = {}
for i = 1, #cells, 2 do freed_units[#freed_units + 1] = cells[i] end
seat_runs_freed(KEYS[#KEYS], freed_units)
redis.call('DEL', KEYS[3], KEYS[4])
redis.call('ZREM', KEYS[2], slot)
-- Entries still waiting for the slot end with it (a slot with a live offer is never here:
-- its hold keeps the slot), and the slot's waitlist keys go.
local wl = #KEYS - 8
for _, entry_id in ipairs(redis.call('ZRANGE', KEYS[wl + 6], 0, -1)) do
  local text = redis.call('HGET', KEYS[wl], entry_id)
  if text then
    local entry = cjson.decode(text)
    entry.status = 'expired'
    entry.ended = now
    redis.call('HSET', KEYS[wl], entry_id, cjson.encode(entry))
    waitlist_ended(KEYS[wl + 1], KEYS[wl], entry_id, now)
  end
end
redis.call('DEL', KEYS[wl + 3], KEYS[wl + 4], KEYS[wl + 5], KEYS[wl + 6], KEYS[wl + 7])
redis.call('ZREM', KEYS[wl + 2], slot)
return {0, now, n}
