#!/usr/bin/env bash
# The cost of access control on reads: the same read-by-id load (wrk, 32 connections) against the demo
# hospital served by this commit (every read decided by the built-in hospital policy from the resource's
# access facts) and by the last commit before access control (80b1937: any signed-in user may read;
# "authorization switched off"). Both stores are generated from the same seed, so the ids are the same.
#
#   bench/access.sh        # about 5 minutes; appends its figures to docs/benchmarks.md
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BASELINE=${WARDLINE_BASELINE:-80b1937}
PATIENTS=${WARDLINE_BENCH_PATIENTS:-500}
WARMUP=${WARDLINE_BENCH_WARMUP:-15}
DURATION=${WARDLINE_BENCH_DURATION:-20}
PORT=${WARDLINE_BENCH_PORT:-5471}
. scripts/services.sh >/dev/null 2>&1 || true
wardline_apt_install wrk python3 >/dev/null 2>&1 || true
WORK=$(mktemp -d /tmp/wardline-access-bench.XXXXXX)
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
  git -C "$ROOT" worktree remove --force "$WORK/baseline-src" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

log "building this commit and $BASELINE (under /tmp/wl.lock)"
git worktree add --detach "$WORK/baseline-src" "$BASELINE" >/dev/null 2>&1
flock /tmp/wl.lock bash -c '
  set -e
  dotnet build src/Wardline/Wardline.csproj -c Release -nologo -clp:ErrorsOnly -v:q
  cp -r src/Wardline/bin/Release/net10.0 "$1/current"
  cd "$1/baseline-src" && dotnet build src/Wardline/Wardline.csproj -c Release -nologo -clp:ErrorsOnly -v:q
  cp -r src/Wardline/bin/Release/net10.0 "$1/baseline"
' _ "$WORK"

run() { # name: generate the demo store, serve it without rate limits, measure reads as cmo.adams
  local name=$1 dir=$WORK/$1-data out=$WORK/$1.out
  log "$name: generating the demo hospital ($PATIENTS patients)"
  dotnet "$WORK/$name/wardline.dll" demo --data "$dir" --patients "$PATIENTS" --port "$PORT" >"$out" 2>&1 &
  PID=$!
  for _ in $(seq 1 600); do grep -q "is serving" "$out" 2>/dev/null && break; sleep 1; done
  kill "$PID"; wait "$PID" 2>/dev/null || true
  local token
  # Both versions have the operator command; it prints the token alone, whatever its format.
  token=$(dotnet "$WORK/$name/wardline.dll" token --data "$dir" --user cmo.adams --minutes 120 | tail -1 | tr -d '[:space:]')
  [ -n "$token" ] || { echo "$name: no token for cmo.adams" >&2; exit 1; }
  WARDLINE__Access__RateLimits__UserPerMinute=0 dotnet "$WORK/$name/wardline.dll" serve --data "$dir" >"$WORK/$name.serve" 2>&1 &
  PID=$!
  for _ in $(seq 1 60); do curl -sf "http://127.0.0.1:5080/fhir/metadata" >/dev/null && break; sleep 1; done
  if [ "$name" = current ]; then
    # Ids the tier-1 clinician may read (the baseline reads the same ids).
    curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:5080/fhir/Observation?_count=1000" \
      | python3 -c 'import sys,json; [print("Observation/"+e["resource"]["id"]) for e in json.load(sys.stdin).get("entry",[])]' >"$WORK/ids.txt"
    curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:5080/fhir/Patient?_count=300" \
      | python3 -c 'import sys,json; [print("Patient/"+e["resource"]["id"]) for e in json.load(sys.stdin).get("entry",[])]' >>"$WORK/ids.txt"
  fi
  local status
  status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "http://127.0.0.1:5080/fhir/$(head -1 "$WORK/ids.txt")")
  [ "$status" = 200 ] || { echo "$name: a sample read answered $status" >&2; exit 1; }
  WL_TOKEN=$token WL_IDS=$WORK/ids.txt wrk -t2 -c32 -d"${WARMUP}s" -s bench/lua/read.lua http://127.0.0.1:5080 >/dev/null
  WL_TOKEN=$token WL_IDS=$WORK/ids.txt wrk -t2 -c32 -d"${DURATION}s" -s bench/lua/read.lua http://127.0.0.1:5080 | grep '^WL ' | sed "s/^WL /$name /" >>"$WORK/results"
  WL_TOKEN=$token WL_IDS=$WORK/ids.txt wrk -t1 -c1 -d"${DURATION}s" -s bench/lua/read.lua http://127.0.0.1:5080 | grep '^WL ' | sed "s/^WL /$name-c1 /" >>"$WORK/results"
  kill "$PID"; wait "$PID" 2>/dev/null || true
  PID=
}
: >"$WORK/results"
run current
run baseline
cat "$WORK/results"
python3 - "$WORK/results" "$(wc -l <"$WORK/ids.txt")" "$BASELINE" "$(git rev-parse --short HEAD)" "$PATIENTS" >>docs/benchmarks.md <<'PY'
import sys, datetime, os
rows = {}
for line in open(sys.argv[1]):
    name, *kv = line.split()
    rows[name] = dict(x.split("=") for x in kv)
ids, base, head, patients = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
def r(n, k): return float(rows[n][k])
print(f"\n## Authorized reads vs authorization switched off (issue 3)\n")
print(f"{datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores ({cpu}), `bench/access.sh`: demo hospital with {patients} patients on SQLite, "
      f"wrk read-by-id of {ids} Observation and Patient ids as the tier-1 clinician (all permitted), {os.environ.get('WARDLINE_BENCH_DURATION','20')} s after a warm-up. "
      f"'current' is {head} (each read decided by the hospital policy from the resource's access facts, decision recorded); "
      f"'off' is {base}, the last commit before access control (any signed-in user may read; the same access record is written).\n")
print("| load | current req/s | off req/s | current / off | current p99 | off p99 |")
print("|---|---|---|---|---|---|")
for suffix, label in (("", "32 connections"), ("-c1", "1 connection")):
    c, b = "current" + suffix, "baseline" + suffix
    print(f"| {label} | {r(c,'rps'):,.0f} | {r(b,'rps'):,.0f} | {r(c,'rps')/r(b,'rps'):.1%} | {r(c,'p99_us')/1000:.2f} ms | {r(b,'p99_us')/1000:.2f} ms |")
print()
PY
log "appended to docs/benchmarks.md"
