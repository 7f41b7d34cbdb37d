--[[
book.lua: a staff booking (phone call, walk-in): claim a cell directly as a confirmed
reservation, with no hold. Skips the pause, past and booking-window checks; never expires.

Input:
  KEYS[1]  venue hash          kind, slot_minutes
  KEYS[2]  slots zset          slot id -> start ms
  KEYS[3]  cells hash          of the slot
  KEYS[4]  units hash          unit id -> capacity
  KEYS[5]  units-by-fit zset   unit id -> capacity * 2^20 + sequence
  KEYS[6]  reservation hash    the new reservation
  KEYS[7]  by-start zset       reference -> slot start ms
  KEYS[8]  by-phone set        references of this client
  KEYS[9]  feed stream
  ARGV[1]  reference           new, random
  ARGV[2]  manage digest       sha256 hex of the new manage token
  ARGV[3]  slot id
  ARGV[4]  party size
  ARGV[5]  units               JSON array of the unit ids asked for; [] = best fit
  ARGV[6]  count               with best fit: how many units
  ARGV[7]  fields              JSON object: name, phone, email, notes, business_notes, tags
  ARGV[8]  venue id
  ARGV[9]  feed maxlen
  ARGV[10] actor               'admin' or the staff token's id (written to the feed)
Output: {code, now ms, ...}
  0  OK                      reference
  10 VENUE_NOT_FOUND
  11 SLOT_NOT_FOUND
  12 UNIT_NOT_FOUND          unit id
  30 UNIT_UNAVAILABLE        unit id, latest expires ms of a blocking hold (-1: reserved)
  31 NO_TABLE_AVAILABLE      earliest expires ms of a blocking hold (-1: none)
  32 NOT_ENOUGH_SEATS        earliest expires ms of a blocking hold (-1: none)
  51 REFERENCE_TAKEN         the random reference exists already: pick another, retry
  52 NEEDS_SWEEP             hold ids of lapsed holds on the chosen cells (sweep, then retry)
  55 UNIT_REPEATED           unit id named more than once
]]

--- @include "cells_json"
--- @include "choose_units"
--- @include "feed_append"
--- @include "now_ms"
--- @include "repeated_unit"
--- @include "sweep_reply"
--- @include "write_reservation"

local reference = ARGV[1]
local manage_digest = ARGV[2]
local slot = ARGV[3]
local party_size = tonumber(ARGV[4])
local asked_units = cjson.decode(ARGV[5])
local count = tonumber(ARGV[6])
local fields = cjson.decode(ARGV[7])
local venue_id = ARGV[8]
local feed_maxlen = tonumber(ARGV[9])
local now = now_ms()

-- One cell is claimed once: a list naming a unit twice is no request for two units.
local twice = repeated_unit(asked_units)
if twice then return {55, now, twice} end

local venue = redis.call('HMGET', KEYS[1], 'kind', 'slot_minutes')
if not venue[1] then return {10, now} end
local starts = tonumber(redis.call('ZSCORE', KEYS[2], slot))
if not starts then return {11, now} end
if redis.call('EXISTS', KEYS[6]) == 1 then return {51, now} end

local chosen, lapsed = choose_units(KEYS[3], KEYS[4], KEYS[5], asked_units, party_size, count,
  now, nil, venue[1])
if not chosen then return lapsed end
if #lapsed > 0 then return sweep_reply(now, lapsed) end

local ends = ''
if venue[2] then ends = string.format('%d', starts + tonumber(venue[2]) * 60000) end
local state = 'r|' .. reference
for _, unit in ipairs(chosen) do redis.call('HSET', KEYS[3], unit, state) end
write_reservation(KEYS[6], KEYS[7], KEYS[8], {
  reference = reference, status = 'confirmed', venue = venue_id, slot = slot,
  units = cjson.encode(chosen), party = tostring(party_size), name = fields.name,
  phone = fields.phone, email = fields.email, notes = fields.notes,
  business_notes = fields.business_notes, tags = fields.tags,
  created = string.format('%d', now), starts = string.format('%d', starts), ends = ends,
  hold = '', user = '', source = 'staff', digest = manage_digest}, starts)
feed_append(KEYS[9], feed_maxlen, 'confirmed', now, nil, nil, reference, cells_json(slot, chosen),
  ARGV[10])
return {0, now, reference}
