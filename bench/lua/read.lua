-- Read-by-id load for wrk: GET /fhir/<Type>/<id> with ids picked at random from a file of
-- "Type/id" lines (WL_IDS), bearer token from WL_TOKEN. Requests are pre-formatted in init()
-- so the load generator spends its CPU on sending, not on Lua string building.
-- done() prints machine-readable lines that bench/run.sh parses.
local reqs = {}

function init(args)
  local token = os.getenv("WL_TOKEN")
  local headers = { ["Authorization"] = "Bearer " .. token, ["Accept"] = "application/fhir+json" }
  for line in io.lines(os.getenv("WL_IDS")) do
    if #line > 0 then reqs[#reqs + 1] = wrk.format("GET", "/fhir/" .. line, headers) end
  end
  math.randomseed(os.time() + (tonumber(tostring({}):match("0x(%x+)"), 16) or 0) % 100000)
end

function request()
  return reqs[math.random(#reqs)]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WL requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.0f errors_connect=%d errors_read=%d errors_write=%d errors_status=%d errors_timeout=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
