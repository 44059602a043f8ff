-- wrk script: POST pre-signed WhatsApp webhook bodies to /webhook, each one once.
--
--   wrk -t1 -c32 -d8s -s bench/wrk_post.lua http://127.0.0.1:PORT -- BODIES_FILE
--
-- BODIES_FILE has one request per line: "<X-Hub-Signature-256 value>\t<JSON body>", written
-- by bench/run.py (distinct senders and message ids, fresh timestamps), because stock wrk
-- cannot compute an HMAC. Requests are formatted once in init() and cycled in order; if the
-- run outlasts the file it wraps around (those repeats hit the dedupe path; run.py reports
-- how many). done() prints one JSON line that run.py parses: latencies in microseconds.

local requests = {}
local count = 0
local index = 0

function init(args)
  local path = args[1]
  if path == nil then
    error("usage: wrk ... -s wrk_post.lua URL -- BODIES_FILE")
  end
  for line in io.lines(path) do
    local tab = line:find("\t", 1, true)
    if tab ~= nil then
      count = count + 1
      requests[count] = wrk.format(
        "POST",
        "/webhook",
        {
          ["Content-Type"] = "application/json",
          ["X-Hub-Signature-256"] = line:sub(1, tab - 1),
        },
        line:sub(tab + 1)
      )
    end
  end
  if count == 0 then
    error("no requests in " .. path)
  end
end

function request()
  index = index + 1
  if index > count then
    index = 1
  end
  return requests[index]
end

function done(summary, latency, requests_stats)
  local errors = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,'
      .. '"max_us":%d,"mean_us":%.1f,"connect_errors":%d,"read_errors":%d,"write_errors":%d,'
      .. '"status_errors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout
  ))
end
