--[[
refresh.lua: extend a live hold to now + hold_seconds, never past created + max_hold_seconds.
A refused refresh changes nothing.

Input:
  KEYS[1]  hold hash
  KEYS[2]  cells hash          of the hold's slot
  KEYS[3]  held zset           of the hold's slot
  KEYS[4]  holds zset          live hold id -> expires ms
  KEYS[5]  user zset           "<hold id>|<units>" -> expires ms
  KEYS[6]  venue hash          hold_seconds, max_hold_seconds
  KEYS[7]  feed stream
  ARGV[1]  hold id
  ARGV[2]  token digest        sha256 hex of the presented Hold-Token
  ARGV[3]  feed maxlen
Output: {code, now ms, ...}
  0  OK                      created ms, new expires ms
  13 HOLD_NOT_FOUND
  20 FORBIDDEN               wrong token
  38 HOLD_LIFETIME_EXCEEDED  expires already equals created + max_hold_seconds
  40 HOLD_EXPIRED            lapsed, released or expired
  41 HOLD_CONFIRMED          already confirmed: reference
]]

--- @include "cells_json"
--- @include "feed_append"
--- @include "held_state"
--- @include "now_ms"
--- @include "record_units"

local hold_id = ARGV[1]
local token_digest = ARGV[2]
local feed_maxlen = tonumber(ARGV[3])
local now = now_ms()

local hold = redis.call('HMGET', KEYS[1], 'digest', 'status', 'created', 'expires', 'units',
  'n', 'user', 'slot', 'ref', 'ends')
if not hold[1] then return {13, now} end
if hold[1] ~= token_digest then return {20, now} end
if hold[2] == 'confirmed' then return {41, now, hold[9]} end
local created = tonumber(hold[3])
local expires = tonumber(hold[4])
if hold[2] ~= 'held' or expires <= now then return {40, now} end

local venue = redis.call('HMGET', KEYS[6], 'hold_seconds', 'max_hold_seconds')
-- The lifetime is fixed when the hold is placed; a later change of the venue's rule
-- neither shortens nor extends it.
local lifetime_end = tonumber(hold[10]) or (created + tonumber(venue[2]) * 1000)
if expires >= lifetime_end then return {38, now} end
local new_expires = now + tonumber(venue[1]) * 1000
if new_expires > lifetime_end then new_expires = lifetime_end end
-- Never shorten a hold (hold_seconds may have been lowered since it was placed).
if new_expires < expires then new_expires = expires end

local units = record_units(hold[5])
local state = held_state(hold_id, new_expires)
for _, unit in ipairs(units) do
  redis.call('HSET', KEYS[2], unit, state)
  redis.call('ZADD', KEYS[3], new_expires, unit)
end
redis.call('HSET', KEYS[1], 'expires', string.format('%d', new_expires))
redis.call('HINCRBY', KEYS[1], 'refreshes', 1)
redis.call('ZADD', KEYS[4], new_expires, hold_id)
redis.call('ZADD', KEYS[5], new_expires, hold_id .. '|' .. hold[6])
feed_append(KEYS[7], feed_maxlen, 'refreshed', now, hold_id, hold[7], nil,
  cells_json(hold[8], units))
return {0, now, created, new_expires}
