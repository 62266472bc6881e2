-- wrk-report.lua: one JSON line with what bench/pool/run reports, from
-- wrk's own counters and latency histogram (microseconds).  Only done()
-- is defined: a request()/response() hook would slow every request down.
-- wrk records the latency of every complete response (any status); a
-- request that hits --timeout counts as a timeout error, not a latency.
done = function(summary, latency, requests)
  local e = summary.errors
  local function p(q) return latency:percentile(q) end
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    p(50), p(90), p(99), p(99.9), latency.max, latency.mean))
end
