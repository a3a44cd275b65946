#!/usr/bin/env bash
# Streaming monitoring latency (issue 6): how long after a ledger entry is durable the alert that names it can be seen.
#
#   flock /tmp/wl.lock bash bench/monitor.sh RUN [RUN...]   # one run is about 2-4 minutes; keep each invocation under 10
#
# RUN is NAME:LOAD:POLL, e.g. idle:0:500 (no read load, PollMilliseconds 500), load:1000:500 (wrk reads paced at
# about 1,000 req/s), load100:1000:100. Raw results go to bench/results/monitor/NAME.txt (one latency per line, in ms,
# then key=value summary lines).
#
# What it does:
#   1. a demo hospital store (`wardline demo`, $WARDLINE_BENCH_PATIENTS patients, reused from $WARDLINE_MONITOR_STORE);
#   2. a Patient whose identifier of Wardline:Access:StaffSystem names cmo.adams (registered by dr.onco), so cmo.adams
#      reading it is the self-access detection's case (an alert at once, high severity; one alert per patient per 24 h,
#      whose entries grow with every read);
#   3. `wardline serve` on 127.0.0.1 with the built-in hospital policy MINUS its `own-record` forbid rule (with the rule,
#      the read is refused and self-access, which examines permitted decisions only, never fires), rate limits off and
#      Wardline:Monitoring:PollMilliseconds = POLL;
#   4. optional read load: wrk (2 threads, 10 connections) reading Observation and Patient ids as dr.onco, paced by a
#      per-connection delay to about LOAD req/s, for the whole run;
#   5. the driver (python3, keep-alive connections): N times, cmo.adams GETs /fhir/Patient/<own id>; the response comes
#      once the ledger entry is durable, so t0 = response received. Then, as privacy.officer, it polls
#      GET /monitor/alerts?detection=self-access&user=cmo.adams every 20 ms until the alert's entry count grows: t1.
#      (Reads carry no X-Ledger-Receipt, only writes do; the driver is the only reader of that record, so the new entry
#      is its read's: it then checks in GET /monitor/alerts/<id> that the newest entry's ledger index is after the
#      previous one.) Latency = t1 - t0 (an upper bound: it includes up to 20 ms of the driver's own polling). Between
#      iterations it waits a random 0-POLL ms so that reads fall at uniformly random points of the detector's poll cycle
#      (a fixed or shorter pause locks the driver to the cycle's phase and biases the figures).
#   6. the server's CPU (utime+stime from /proc) and the machine's over the driver's run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
[ $# -gt 0 ] || { sed -n '2,8p' "$0"; exit 2; }
PATIENTS=${WARDLINE_BENCH_PATIENTS:-500}
PORT=${WARDLINE_BENCH_PORT:-5485}
N=${WARDLINE_MONITOR_N:-300}
STORE=${WARDLINE_MONITOR_STORE:-/tmp/wardline-monitor-bench/store}
CLI=${WARDLINE_MONITOR_CLI:-/tmp/wardline-monitor-bench/cli}
OUT=$ROOT/bench/results/monitor
BASE=http://127.0.0.1:$PORT
mkdir -p "$OUT" "$(dirname "$STORE")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
WORK=$(mktemp -d /tmp/wardline-monitor-bench.XXXXXX)
PID= WRK=
cleanup() {
  [ -n "$WRK" ] && kill "$WRK" 2>/dev/null || true
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# The caller holds /tmp/wl.lock (no build competes with the run), so build without taking it again; the binaries are
# copied aside once (delete $CLI to rebuild).
if [ ! -f "$CLI/wardline.dll" ]; then
  log "building Release"
  dotnet build src/Wardline/Wardline.csproj -c Release -nologo -clp:ErrorsOnly -v:q
  rm -rf "$CLI"; cp -r src/Wardline/bin/Release/net10.0 "$CLI"
  git rev-parse --short HEAD >"$CLI/commit"
fi
WL=(dotnet "$CLI/wardline.dll")

if [ ! -f "$STORE/wardline.db" ]; then
  log "generating the demo hospital ($PATIENTS patients) in $STORE"
  "${WL[@]}" demo --data "$STORE" --patients "$PATIENTS" --port "$PORT" >"$WORK/demo.out" 2>&1 &
  PID=$!
  for _ in $(seq 1 600); do grep -q "is serving" "$WORK/demo.out" 2>/dev/null && break; sleep 1; done
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
fi
token() { "${WL[@]}" token --data "$STORE" --user "$1" --minutes 120 2>/dev/null | tail -1 | tr -d '[:space:]'; }
SELF=$(token cmo.adams); CLIN=$(token dr.onco); OFFICER=$(token privacy.officer)

# The hospital policy without its own-record forbid rule (the rule's lines up to the next blank line).
awk '/^  - id: own-record$/ {skip=1} skip && /^$/ {skip=0; next} !skip' \
  src/Wardline.Server/Modules/Access/hospital-policy.yaml >"$WORK/policy.yaml"
grep -q "own-record" "$WORK/policy.yaml" && { echo "could not remove the own-record rule" >&2; exit 1; }

cat >"$WORK/paced.lua" <<EOF
dofile("$ROOT/bench/lua/read.lua")
function delay() return tonumber(os.getenv("WL_DELAY_MS")) end
EOF

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
machine_ticks() { awk '/^cpu / {print $2+$3+$4+$5+$6+$7+$8}' /proc/stat; }
machine_busy() { awk '/^cpu / {print $2+$3+$4+$7+$8}' /proc/stat; }

for run in "$@"; do
  IFS=: read -r NAME LOAD POLL <<<"$run"
  log "$NAME: serving with PollMilliseconds=$POLL, read load ${LOAD} req/s"
  WARDLINE__Access__RateLimits__UserPerMinute=0 WARDLINE__Access__PolicyPath="$WORK/policy.yaml" \
    WARDLINE__Monitoring__PollMilliseconds="$POLL" \
    "${WL[@]}" serve --data "$STORE" --urls "$BASE" >"$WORK/$NAME.serve" 2>&1 &
  PID=$!
  for _ in $(seq 1 90); do curl -sf "$BASE/fhir/metadata" >/dev/null && break; sleep 1; done
  curl -sf "$BASE/fhir/metadata" >/dev/null || { cat "$WORK/$NAME.serve" >&2; exit 1; }

  # The staff member's own Patient record, registered by dr.onco the first time (its id is kept next to the store).
  own=$(cat "$STORE.own" 2>/dev/null || true)
  if [ -z "$own" ]; then
    own=$(curl -sf -X POST -H "Authorization: Bearer $CLIN" -H 'Content-Type: application/fhir+json' "$BASE/fhir/Patient" \
      -d '{"resourceType":"Patient","identifier":[{"use":"secondary","system":"https://wardline.example/staff","value":"cmo.adams"}],"gender":"female","birthDate":"1970-01-01"}' \
      | python3 -c 'import sys,json; print(json.load(sys.stdin)["id"])')
    echo "$own" >"$STORE.own"
    log "registered cmo.adams's own Patient record $own"
  fi
  # Ids dr.onco may read (Observations and Patients of the department).
  curl -sf -H "Authorization: Bearer $CLIN" "$BASE/fhir/Observation?_count=1000" \
    | python3 -c 'import sys,json; [print("Observation/"+e["resource"]["id"]) for e in json.load(sys.stdin).get("entry",[])]' >"$WORK/ids.txt"
  curl -sf -H "Authorization: Bearer $CLIN" "$BASE/fhir/Patient?_count=300" \
    | python3 -c 'import sys,json; [print("Patient/"+e["resource"]["id"]) for e in json.load(sys.stdin).get("entry",[])]' >>"$WORK/ids.txt"
  # The detector reloads the organisation model at most every 5 s after a change, and warms at start: let it settle.
  sleep 8

  if [ "$LOAD" -gt 0 ]; then
    # 10 connections, each waiting DELAY ms after every response: about 10 * 1000 / (DELAY + latency) req/s.
    delay=$(( 10000 / LOAD )); [ "$delay" -ge 1 ] || delay=1
    WL_TOKEN=$CLIN WL_IDS=$WORK/ids.txt WL_DELAY_MS=$((delay > 1 ? delay - 1 : 1)) \
      wrk -t2 -c10 -d600s -s "$WORK/paced.lua" "$BASE" >"$WORK/$NAME.wrk" 2>&1 &
    WRK=$!
    sleep 10   # warm-up: the JIT tiers up the hot paths, the detector reaches its steady state
  fi

  # Measure only once the detector has warmed (it learns baselines from 28 days of entries, which grows with every
  # run on the same store) and caught up with the ledger.
  for _ in $(seq 1 240); do
    curl -s -H "Authorization: Bearer $OFFICER" "$BASE/monitor/status" \
      | python3 -c 'import sys,json; s=json.load(sys.stdin); sys.exit(0 if s.get("cursor") is not None and s["lastCycle"] and s["lag"] < 50 else 1)' && break
    sleep 0.5
  done
  s0=$(cpu_ticks "$PID"); m0=$(machine_ticks); b0=$(machine_busy); w0=$(date +%s.%N)
  python3 - "$BASE" "$SELF" "$OFFICER" "$own" "$N" "$POLL" >"$WORK/$NAME.lat" <<'PY'
import http.client, json, random, sys, time, urllib.parse
base, selftok, officer, own, n, poll = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]) / 1000
host = urllib.parse.urlparse(base)
a = http.client.HTTPConnection(host.hostname, host.port)
b = http.client.HTTPConnection(host.hostname, host.port)
def get(conn, path, tok):
    conn.request("GET", path, headers={"Authorization": "Bearer " + tok, "Accept": "application/json"})
    r = conn.getresponse()
    return r.status, r.getheaders(), r.read()
alert, seen, last = None, 0, -1
def count():
    global alert
    s, _, body = get(b, "/monitor/alerts?detection=self-access&user=cmo.adams&limit=1", officer)
    if s != 200: sys.exit(f"the alert list answered {s}")
    found = json.loads(body)["alerts"]
    if not found: return 0
    alert = found[0]["id"]
    return found[0]["entries"]
def newest():
    s, _, body = get(b, f"/monitor/alerts/{alert}", officer)
    if s != 200: sys.exit(f"the alert detail answered {s}")
    return max(e["index"] for e in json.loads(body)["entries"])
seen = count()
if alert is not None: last = newest()
lat, polls = [], 0
for i in range(n):
    time.sleep(random.uniform(0, poll))
    status, headers, _ = get(a, "/fhir/Patient/" + own, selftok)
    t0 = time.perf_counter()
    if status != 200: sys.exit(f"the own-record read answered {status}")
    # The driver is the only one reading this record, so the alert's next entry is this read's ledger entry.
    while True:
        c = count()
        if c > seen: break
        polls += 1
        if time.perf_counter() - t0 > 30: sys.exit(f"no new self-access entry after 30 s (iteration {i})")
        time.sleep(0.02)
    t1 = time.perf_counter()
    seen = c
    idx = newest()
    if idx <= last: sys.exit(f"the alert's newest entry {idx} is not after the previous one {last}")
    last = idx
    lat.append((t1 - t0) * 1000)
    print(f"{lat[-1]:.1f}", flush=True)
print(f"# alert={alert} polls={polls} last_index={last} entries={seen}")
PY
  w1=$(date +%s.%N); s1=$(cpu_ticks "$PID"); m1=$(machine_ticks); b1=$(machine_busy)
  rps=
  if [ -n "$WRK" ]; then
    kill -INT "$WRK"; wait "$WRK" 2>/dev/null || true; WRK=
    # wrk prints its summary when interrupted: requests/s over the whole run (warm-up included).
    rps=$(awk '/^Requests\/sec/ {print $2}' "$WORK/$NAME.wrk")
    errs=$(awk '/Non-2xx|Socket errors/' "$WORK/$NAME.wrk" | tr '\n' ' ')
  fi
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
  tck=$(getconf CLK_TCK)
  python3 - "$WORK/$NAME.lat" "$NAME" "$LOAD" "$POLL" "${rps:-0}" "$(( s1 - s0 ))" "$(( m1 - m0 ))" "$(( b1 - b0 ))" "$tck" "$w0" "$w1" "${errs:-}" >"$OUT/$NAME.txt" <<'PY'
import sys
f, name, load, poll, rps, sticks, mticks, bticks, tck, w0, w1, errs = sys.argv[1:13]
lines = open(f).read().split("\n")
lat = sorted(float(x) for x in lines if x and not x.startswith("#"))
wall = float(w1) - float(w0)
q = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))]
for x in lat: print(f"{x:.1f}")
print("\n".join(l for l in lines if l.startswith("#")))
print(f"run={name} load_target_rps={load} poll_ms={poll} n={len(lat)} wall_s={wall:.1f}")
print(f"min_ms={lat[0]:.0f} p50_ms={q(50):.0f} p90_ms={q(90):.0f} p99_ms={q(99):.0f} max_ms={lat[-1]:.0f} mean_ms={sum(lat)/len(lat):.0f}")
print(f"wrk_rps={rps} wrk_errors={errs.strip() or 'none'}")
print(f"server_cpu_cores={int(sticks)/int(tck)/wall:.2f} machine_busy={int(bticks)/max(1,int(mticks)):.0%}")
PY
  tail -4 "$OUT/$NAME.txt" >&2
  cp "$WORK/$NAME.serve" "$OUT/$NAME.serve.log" 2>/dev/null || true
done
{
  echo "commit=$(cat "$CLI/commit" 2>/dev/null || git rev-parse --short HEAD)"
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "nproc=$(nproc)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "mem_gib=$(awk '/MemTotal/ {printf "%.1f", $2/1048576}' /proc/meminfo)"
  echo "loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "wrk=$(wrk -v 2>&1 | head -1 | awk '{print $2}')"
} >"$OUT/machine.txt"
