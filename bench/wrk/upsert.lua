-- wrk script: PUT /{hub}/installations/{id} with a distinct installation per request (APNs,
-- a unique 64-hex device token, 3 tags out of 1000, one template), as apps register devices.
--   wrk -s bench/wrk/upsert.lua http://127.0.0.1:PORT  (env: PUSHHUB_TOKEN, PUSHHUB_HUB, RUN)
local threads = {}
local hub = os.getenv("PUSHHUB_HUB") or "bench"
local token = os.getenv("PUSHHUB_TOKEN") or ""
local run = os.getenv("RUN") or "0"

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  n = 0
  headers = {["Content-Type"] = "application/json", ["Authorization"] = token}
end

function request()
  n = n + 1
  local id = string.format("r%s-t%d-%d", run, tid, n)
  local token_hex = string.format("%08x%08x%048x", tonumber(run) or 0, tid, n)
  local body = string.format(
    '{"installationId":"%s","platform":"apns","pushChannel":"%s",' ..
    '"tags":["t%d","t%d","t%d"],"templates":{"main":{"body":"{\\"aps\\":{\\"alert\\":\\"$(msg)\\"}}"}}}',
    id, token_hex, n % 1000, (n * 7) % 1000, (n * 13) % 1000)
  return wrk.format("PUT", "/" .. hub .. "/installations/" .. id, headers, body)
end

function done(summary, latency, requests)
  io.write(string.format("upserts=%d non2xx=%d errors=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.errors.status, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
