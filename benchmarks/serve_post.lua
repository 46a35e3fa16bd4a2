-- wrk script for benchmarks/serve.py: POST /predict with one real sentence per request.
--
--   wrk -t1 -cC -dS --timeout 30s -s benchmarks/serve_post.lua URL/predict -- BODIES_FILE MAX_REQUESTS
--
-- BODIES_FILE holds one JSON body per line ({"text": "..."}); requests rotate through them. Each
-- thread stops after MAX_REQUESTS responses (wrk itself stops after -d seconds), so a run is bounded
-- in count and in time. At the end it prints one line "SERVE_JSON {...}" with the responses counted,
-- non-200 answers, wrk's socket errors, the latency percentiles (microseconds) and the seconds from
-- the first request to the last response, measured with CLOCK_MONOTONIC: wrk's own duration is
-- always the full -d even when the count bound stopped the threads earlier.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } serve_timespec;
  int clock_gettime(int clk_id, serve_timespec *tp);
]]
local ts = ffi.new("serve_timespec")
local function now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

-- main state: keep the threads so that done() can read their counters
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

-- thread state
local bodies, next_body, max_requests = {}, 1, 0
local headers = { ["Content-Type"] = "application/json" }
function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then table.insert(bodies, line) end
  end
  max_requests = tonumber(args[2])
  responses, non_200, first, last = 0, 0, 0, 0
end

function request()
  if first == 0 then first = now() end
  local body = bodies[next_body]
  next_body = next_body % #bodies + 1
  return wrk.format("POST", nil, headers, body)
end

function response(status, hdrs, body)
  responses = responses + 1
  last = now()
  if status ~= 200 then non_200 = non_200 + 1 end
  if responses >= max_requests then wrk.thread:stop() end
end

function done(summary, latency, requests)
  local n, bad, t0, t1 = 0, 0, math.huge, 0
  for _, t in ipairs(threads) do
    n = n + t:get("responses")
    bad = bad + t:get("non_200")
    local f, l = t:get("first"), t:get("last")
    if f > 0 and f < t0 then t0 = f end
    if l > t1 then t1 = l end
  end
  local e = summary.errors
  io.write(string.format(
    'SERVE_JSON {"responses": %d, "non_200": %d, "socket_errors": %d, "timeouts": %d, ' ..
    '"seconds": %.6f, "p50_us": %d, "p95_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d}\n',
    n, bad, e.connect + e.read + e.write, e.timeout, math.max(t1 - t0, 0),
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.mean, latency.max))
end
