-- wrk script: POST a hold for a random (or the hot) table of one slot, as a new user each time.
-- Set by the bench: HOLD_PATH, HOLD_SLOT, HOLD_TABLES (1 = the hot cell: always table T1).
local path = os.getenv("HOLD_PATH")
local slot = os.getenv("HOLD_SLOT")
local tables = tonumber(os.getenv("HOLD_TABLES") or "100")
local counter = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function setup(thread)
  thread:set("id", tostring(math.random(1, 1000000)))
end

-- Each thread has its own Lua state with the same default seed: seed it by its id, or both
-- threads would ask for the same tables in the same order.
function init(args)
  math.randomseed(tonumber(id))
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"user_id":"w%s-%d","slot":"%s","party_size":2,"table_id":"T%d"}',
    id, counter, slot, math.random(1, tables))
  return wrk.format(nil, path, nil, body)
end

function done(summary, latency, requests)
  io.write(string.format("BENCH rps=%.1f p50=%.2f p99=%.2f errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
