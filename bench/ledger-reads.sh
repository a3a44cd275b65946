#!/usr/bin/env bash
# The cost of audit-before-disclosure on reads (issue 4): the same read-by-id load (wrk, as bench/access.sh) against
# the same demo hospital, served by this commit (every read's decision is a ledger entry: encoded, leaf-hashed and
# appended to the Merkle tree in the group commit before the resource is sent) and by 5e8c2ee, the last commit before
# the ledger (the same decision rows went to the interim access_log table, also group-committed before the response).
#
#   bench/ledger-reads.sh      # about 4 minutes (plus waits for the build lock); raw figures in bench/results/ledger/reads.txt
#
# Same data: the store is generated once (5e8c2ee's `wardline demo`, fixed seed) and copied; this commit's server
# migrates its copy at start-up (the ledger starts by recording the versions already stored). Both servers run at once
# on their own ports; the measured runs alternate (this commit, before, this commit, before) so that drift in the
# machine's load falls on both. Each round holds /tmp/wl.lock, so no build or test runs beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BEFORE=${WARDLINE_BEFORE:-5e8c2ee}
BEFORE_TREE=${WARDLINE_BEFORE_TREE:-/tmp/wl-before}
# WARDLINE_NOW_TREE: serve "now" from another worktree (e.g. one at the ledger's own commit) instead of this one.
NOW_TREE=${WARDLINE_NOW_TREE:-$ROOT}
READS_OUT=${WARDLINE_READS_OUT:-reads.txt}
PATIENTS=${WARDLINE_BENCH_PATIENTS:-500}
WARMUP=${WARDLINE_BENCH_WARMUP:-10}
DURATION=${WARDLINE_BENCH_DURATION:-12}
ROUNDS=${WARDLINE_BENCH_ROUNDS:-2}
PORT_NOW=${WARDLINE_BENCH_PORT:-5485}
PORT_BEFORE=$((PORT_NOW + 1))
OUT=bench/results/ledger
mkdir -p "$OUT"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
WORK=$(mktemp -d /tmp/wardline-ledger-reads.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

log "building this commit and $BEFORE (worktree $BEFORE_TREE), under /tmp/wl.lock"
[ -d "$BEFORE_TREE" ] || git worktree add --detach "$BEFORE_TREE" "$BEFORE" >/dev/null
[ "$(git -C "$BEFORE_TREE" rev-parse --short HEAD)" = "$(git rev-parse --short "$BEFORE")" ] || { echo "$BEFORE_TREE is not at $BEFORE" >&2; exit 2; }
flock /tmp/wl.lock bash -c '
  set -e
  (cd "$3" && dotnet build src/Wardline/Wardline.csproj -c Release -nologo -clp:ErrorsOnly -v:q)
  cp -r "$3/src/Wardline/bin/Release/net10.0" "$1/now"
  cd "$2" && dotnet build src/Wardline/Wardline.csproj -c Release -nologo -clp:ErrorsOnly -v:q
  cp -r src/Wardline/bin/Release/net10.0 "$1/before"
' _ "$WORK" "$BEFORE_TREE" "$NOW_TREE"

log "generating the demo hospital ($PATIENTS patients) once, with $BEFORE"
dotnet "$WORK/before/wardline.dll" demo --data "$WORK/data" --patients "$PATIENTS" --port "$PORT_NOW" >"$WORK/demo.out" 2>&1 &
DEMO=$!
for _ in $(seq 1 600); do grep -q "is serving" "$WORK/demo.out" 2>/dev/null && break; kill -0 "$DEMO" 2>/dev/null || break; sleep 1; done
kill "$DEMO" 2>/dev/null || true; wait "$DEMO" 2>/dev/null || true
grep -q "is serving" "$WORK/demo.out" || { cat "$WORK/demo.out" >&2; exit 1; }
cp -r "$WORK/data" "$WORK/data-now"
mv "$WORK/data" "$WORK/data-before"

serve() { # name port
  local name=$1 port=$2
  WARDLINE__Access__RateLimits__UserPerMinute=0 dotnet "$WORK/$name/wardline.dll" serve --data "$WORK/data-$name" --urls "http://127.0.0.1:$port" >"$WORK/$name.serve" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 120); do curl -sf "http://127.0.0.1:$port/fhir/metadata" >/dev/null && return 0; sleep 1; done
  echo "$name did not start" >&2; cat "$WORK/$name.serve" >&2; exit 1
}
log "starting both servers (this commit on $PORT_NOW, $BEFORE on $PORT_BEFORE)"
serve now "$PORT_NOW"
serve before "$PORT_BEFORE"
TOKEN_NOW=$(dotnet "$WORK/now/wardline.dll" token --data "$WORK/data-now" --user cmo.adams --minutes 120 | tail -1 | tr -d '[:space:]')
TOKEN_BEFORE=$(dotnet "$WORK/before/wardline.dll" token --data "$WORK/data-before" --user cmo.adams --minutes 120 | tail -1 | tr -d '[:space:]')

# Ids the tier-1 clinician may read, asked of this commit's server (the other serves the same store).
curl -sf -H "Authorization: Bearer $TOKEN_NOW" "http://127.0.0.1:$PORT_NOW/fhir/Observation?_count=1000" \
  | python3 -c 'import sys,json; [print("Observation/"+e["resource"]["id"]) for e in json.load(sys.stdin).get("entry",[])]' >"$WORK/ids.txt"
curl -sf -H "Authorization: Bearer $TOKEN_NOW" "http://127.0.0.1:$PORT_NOW/fhir/Patient?_count=300" \
  | python3 -c 'import sys,json; [print("Patient/"+e["resource"]["id"]) for e in json.load(sys.stdin).get("entry",[])]' >>"$WORK/ids.txt"
for pair in "now $PORT_NOW $TOKEN_NOW" "before $PORT_BEFORE $TOKEN_BEFORE"; do
  set -- $pair
  status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $3" "http://127.0.0.1:$2/fhir/$(head -1 "$WORK/ids.txt")")
  [ "$status" = 200 ] || { echo "$1: a sample read answered $status" >&2; exit 1; }
done

# The measured runs hold the shared build lock (fd 9 on /tmp/wl.lock) a round at a time (about a minute), so no build or
# test runs beside them, and a round's four runs are not spread over other people's lock holds.
lock() { exec 9>>/tmp/wl.lock; flock 9; }
unlock() { flock -u 9; exec 9>&-; }
load() { # label port token connections threads seconds
  WL_TOKEN=$3 WL_IDS=$WORK/ids.txt wrk -t"$5" -c"$4" -d"$6s" -s bench/lua/read.lua "http://127.0.0.1:$2" | grep '^WL ' | sed "s/^WL /$1 /"
}
: >"$WORK/results"
for round in $(seq 1 "$ROUNDS"); do
  lock
  if [ "$round" = 1 ]; then
    log "warming up both servers ($WARMUP s each, 32 connections)"
    load warmup "$PORT_NOW" "$TOKEN_NOW" 32 2 "$WARMUP" >/dev/null
    load warmup "$PORT_BEFORE" "$TOKEN_BEFORE" 32 2 "$WARMUP" >/dev/null
  fi
  for name in now before; do
    port=$PORT_NOW; token=$TOKEN_NOW
    [ "$name" = before ] && { port=$PORT_BEFORE; token=$TOKEN_BEFORE; }
    log "round $round: $name, 32 connections then 1 connection ($DURATION s each)"
    load "$name.c32.r$round" "$port" "$token" 32 2 "$DURATION" >>"$WORK/results"
    load "$name.c1.r$round" "$port" "$token" 1 1 "$DURATION" >>"$WORK/results"
  done
  unlock
done
LEDGER_SIZE=$(curl -sf -H "Authorization: Bearer $TOKEN_NOW" "http://127.0.0.1:$PORT_NOW/ledger/head" | python3 -c 'import sys,json; print(json.load(sys.stdin).get("currentSize", "?"))' 2>/dev/null || echo "?")
{
  echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# now=$(git -C "$NOW_TREE" rev-parse --short HEAD)$(git -C "$NOW_TREE" diff --quiet HEAD -- src || echo '+uncommitted-src') before=$BEFORE patients=$PATIENTS ids=$(wc -l <"$WORK/ids.txt") warmup_s=$WARMUP duration_s=$DURATION rounds=$ROUNDS ledger_size_after=$LEDGER_SIZE"
  cat "$WORK/results"
} | tee "$OUT/$READS_OUT"
python3 - "$OUT/$READS_OUT" <<'PY'
import sys, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    if line.startswith("#") or not line.strip(): continue
    label, *kv = line.split()
    name, conns, _ = label.split(".")
    d = dict(x.split("=") for x in kv)
    rows[(name, conns)].append(d)
for conns in ("c32", "c1"):
    now = [float(d["rps"]) for d in rows[("now", conns)]]
    before = [float(d["rps"]) for d in rows[("before", conns)]]
    p99n = [int(d["p99_us"]) / 1000 for d in rows[("now", conns)]]
    p99b = [int(d["p99_us"]) / 1000 for d in rows[("before", conns)]]
    errs = sum(int(d[k]) for r in rows.values() for d in r for k in d if k.startswith("errors_"))
    print(f"{conns}: with ledger {sum(now)/len(now):,.0f} req/s (runs {', '.join(f'{x:,.0f}' for x in now)}), "
          f"before {sum(before)/len(before):,.0f} req/s (runs {', '.join(f'{x:,.0f}' for x in before)}), "
          f"ratio {sum(now)/sum(before):.1%}; p99 {min(p99n):.2f}-{max(p99n):.2f} ms vs {min(p99b):.2f}-{max(p99b):.2f} ms; errors {errs}")
PY
