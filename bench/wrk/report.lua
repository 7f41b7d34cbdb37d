-- wrk script: only the report line the bench parses (GET as wrk does by default).
function done(summary, latency, requests)
  io.write(string.format("BENCH rps=%.1f p50=%.2f p99=%.2f errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
