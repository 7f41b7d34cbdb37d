-- include/feed_append.lua: inlined by holdsvc.scripts into each script that includes it.
-- Every state change appends exactly one entry to the venue's feed, in the same script.
-- `actor`: who made the change ('admin' or a staff token id); nil for guests and expiries.
-- `status`: the reservation's new status when a change sets one (nil: left out).
local function feed_append(feed, maxlen, event, now, hold_id, user_id, reference, cells, actor,
    status)
  if status then
    return redis.call('XADD', feed, 'MAXLEN', '~', maxlen, '*',
      'event', event, 'at', string.format('%d', now), 'hold', hold_id or '',
      'user', user_id or '', 'ref', reference or '', 'cells', cells, 'actor', actor or '',
      'status', status)
  end
  return redis.call('XADD', feed, 'MAXLEN', '~', maxlen, '*',
    'event', event, 'at', string.format('%d', now), 'hold', hold_id or '',
    'user', user_id or '', 'ref', reference or '', 'cells', cells, 'actor', actor or '')
end
