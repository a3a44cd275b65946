#!/usr/bin/env bash
# Runs Wardline's benchmarks on SQLite and on PostgreSQL and writes docs/benchmarks.md.
#
#   bench/run.sh            # full run (about 10-15 minutes on a 2-core machine)
#   bench/run.sh --trial    # same run; the report is marked as a trial on a shared, noisy machine
#
# What it does: installs wrk, h2load (nghttp2-client) and PostgreSQL from Debian if missing, starts a
# private PostgreSQL (scripts/services.sh, port $WARDLINE_PGPORT, default here 55460), builds Release
# under the shared build lock (/tmp/wl.lock) and copies the binaries aside so that other builds
# cannot change them mid-run, measures the disk's fsync latency, then per engine:
#   1. Synthea import in-process (bench/Wardline.Bench: 3 rounds, round 1 cold, rounds 2-3 warm)
#   2. Synthea import through the CLI (`wardline import`) into the store the server then serves
#   3. read-by-id over HTTP with wrk at 1 and 32 connections (15 s warm-up: the JIT tiers up the hot paths in the first seconds; then 20 s measured)
#   4. p99 read latency at a fixed 1,000 req/s with h2load (--rps per client, 10 clients)
#   5. create/read/update/delete mix over 9 resource types with wrk (15 s warm-up: the JIT tiers up the hot paths in the first seconds; then 20 s measured)
# During every measured run it samples the CPU time of the server, PostgreSQL, the load generator
# and the whole machine (/proc), so the report can say what limited the figure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

TRIAL=0
for arg in "$@"; do
  case "$arg" in
    --trial) TRIAL=1 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

DATA=${WARDLINE_BENCH_DATA:-/work/shared/data/synthea}
[ -d "$DATA" ] || { echo "Synthea data not found at $DATA (set WARDLINE_BENCH_DATA)" >&2; exit 2; }
WARMUP=${WARDLINE_BENCH_WARMUP:-15}
DURATION=${WARDLINE_BENCH_DURATION:-20}
PORT=${WARDLINE_BENCH_PORT:-5461}
ROUNDS=${WARDLINE_BENCH_ROUNDS:-3}
export WARDLINE_PGPORT=${WARDLINE_PGPORT:-55460}
STARTED=$(date +%s)

# PostgreSQL (installs it if missing, starts it, and registers its own EXIT trap, replaced below).
. scripts/services.sh
wardline_apt_install wrk nghttp2-client python3

WORK=$(mktemp -d /tmp/wardline-bench.XXXXXX)
RESULTS=$WORK/results.txt
: >"$RESULTS"
SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=
}
cleanup() {
  stop_server
  wardline_stop_services
  rm -rf "$WORK"
}
trap cleanup EXIT

put() { echo "$1=$2" >>"$RESULTS"; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# ---- build (under the shared lock), then run from a private copy of the binaries ----
log "building Release (waiting for /tmp/wl.lock if another build holds it)"
flock /tmp/wl.lock bash -c '
  set -e
  dotnet build src/Wardline/Wardline.csproj -c Release -nologo -clp:ErrorsOnly -v:q
  dotnet build bench/Wardline.Bench/Wardline.Bench.csproj -c Release -nologo -clp:ErrorsOnly -v:q
  cp -r src/Wardline/bin/Release/net10.0 "$1/cli"
  cp -r bench/Wardline.Bench/bin/Release/net10.0 "$1/inproc"
' _ "$WORK"
WL=(dotnet "$WORK/cli/wardline.dll")
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# ---- machine ----
CLK_TCK=$(getconf CLK_TCK)
put machine.nproc "$(nproc)"
put machine.cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
put machine.mem_gib "$(awk '/MemTotal/ {printf "%.1f", $2/1048576}' /proc/meminfo)"
put machine.kernel "$(uname -sr)"
put machine.dotnet_sdk "$(dotnet --version)"
put machine.dotnet_runtime "$(dotnet --list-runtimes | awk '/Microsoft.NETCore.App/ {v=$2} END {print v}')"
put machine.postgres "$("$WARDLINE_PG_BIN/postgres" --version | awk '{print $3}')"
put machine.sqlite "$(python3 -c 'import sqlite3; print(sqlite3.sqlite_version)') (python's; Microsoft.Data.Sqlite bundles its own)"
put machine.wrk "$(wrk -v 2>&1 | head -1 | awk '{print $2}')"
put machine.h2load "$(h2load --version | awk '{print $2}')"
put machine.date "$(date -u '+%Y-%m-%d %H:%M UTC')"
put machine.commit "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' + uncommitted changes in src/')"
put machine.loadavg_start "$(cut -d' ' -f1-3 /proc/loadavg)"
put machine.fs "$(df -T "$WORK" | awk 'NR==2 {print $1" ("$2")"}')"
put run.trial "$TRIAL"
put run.warmup_s "$WARMUP"
put run.duration_s "$DURATION"

# ---- fsync latency of the disk the stores live on (SQLite files and PostgreSQL data are under /tmp) ----
log "measuring fsync latency"
python3 - "$WORK/fsync.probe" >>"$RESULTS" <<'PY'
import os, sys, time
path = sys.argv[1]
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
buf = b"x" * 4096
lat = []
for i in range(400):
    os.pwrite(fd, buf, (i % 64) * 4096)
    t = time.perf_counter()
    os.fsync(fd)
    lat.append((time.perf_counter() - t) * 1e6)
os.close(fd); os.unlink(path)
lat = lat[20:]
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))]
print(f"fsync.p50_us={q(50):.0f}\nfsync.p99_us={q(99):.0f}\nfsync.mean_us={sum(lat)/len(lat):.0f}\nfsync.n={len(lat)}")
PY

# ---- CPU accounting: ticks of a process tree, of PostgreSQL, and of the whole machine ----
proc_ticks() { # utime+stime (+ reaped children) of the given pids
  local t=0 p f
  for p in "$@"; do
    [ -n "$p" ] && [ -r "/proc/$p/stat" ] || continue
    f=$(sed 's/^.*) //' "/proc/$p/stat")
    t=$((t + $(awk '{print $12 + $13 + $14 + $15}' <<<"$f")))
  done
  echo "$t"
}
pg_ticks() {
  local pm
  pm=$(head -1 "$WARDLINE_PGDATA/postmaster.pid")
  # shellcheck disable=SC2046
  proc_ticks "$pm" $(pgrep -P "$pm" || true)
}
machine_busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
pg_commits() {
  "$WARDLINE_PG_BIN/psql" -h 127.0.0.1 -p "$WARDLINE_PGPORT" -U postgres -At \
    -c "SELECT COALESCE(SUM(xact_commit), 0) FROM pg_stat_database" 2>/dev/null || echo 0
}

# measure KEY CMD...: runs CMD (the load generator), records the CPU split of the run under KEY.
measure() {
  local key=$1; shift
  local s0 p0 m0 c0 s1 p1 m1 c1 t0 t1 tf
  tf=$WORK/time.$$
  s0=$(proc_ticks "$SERVER_PID"); p0=$(pg_ticks); m0=$(machine_busy_ticks); c0=$(pg_commits); t0=$(date +%s.%N)
  /usr/bin/time -f '%U %S' -o "$tf" "$@"
  s1=$(proc_ticks "$SERVER_PID"); p1=$(pg_ticks); m1=$(machine_busy_ticks); c1=$(pg_commits); t1=$(date +%s.%N)
  python3 - "$key" "$CLK_TCK" "$s0" "$s1" "$p0" "$p1" "$m0" "$m1" "$t0" "$t1" "$(cat "$tf")" "$c0" "$c1" >>"$RESULTS" <<'PY'
import sys
k, hz = sys.argv[1], float(sys.argv[2])
s0, s1, p0, p1, m0, m1 = (float(x) for x in sys.argv[3:9])
t0, t1 = float(sys.argv[9]), float(sys.argv[10])
gen = sum(float(x) for x in sys.argv[11].split())
c0, c1 = float(sys.argv[12]), float(sys.argv[13])
print(f"{k}.wall_s={t1 - t0:.2f}")
print(f"{k}.cpu_server_s={(s1 - s0) / hz:.2f}")
print(f"{k}.cpu_postgres_s={(p1 - p0) / hz:.2f}")
print(f"{k}.cpu_loadgen_s={gen:.2f}")
print(f"{k}.cpu_machine_s={(m1 - m0) / hz:.2f}")
print(f"{k}.pg_commits={c1 - c0:.0f}")
PY
  rm -f "$tf"
}

# kv_from LINE PREFIX: turns "WL a=1 b=2" into PREFIX.a=1 lines.
kv_from() { grep '^WL ' | head -1 | tr ' ' '\n' | grep '=' | sed "s/^/$1./" >>"$RESULTS"; }

start_server() { # engine store-args...
  local engine=$1; shift
  "${WL[@]}" serve "$@" --urls "http://127.0.0.1:$PORT" >"$WORK/server-$engine.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 120); do
    if curl -fsS "http://127.0.0.1:$PORT/fhir/metadata" -o /dev/null 2>/dev/null; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server-$engine.log" >&2; return 1; }
    sleep 0.5
  done
  echo "server did not start" >&2; cat "$WORK/server-$engine.log" >&2; return 1
}

fetch_ids() { # token -> writes $WORK/ids.txt ("Type/id" lines)
  local type
  : >"$WORK/ids.txt"
  for type in Patient Observation; do
    curl -fsS -H "Authorization: Bearer $1" -H "Accept: application/fhir+json" \
      "http://127.0.0.1:$PORT/fhir/$type?_count=1000" |
      python3 -c 'import json,sys; [print(e["resource"]["resourceType"] + "/" + e["resource"]["id"]) for e in json.load(sys.stdin).get("entry", []) if e.get("search", {}).get("mode") == "match"]' >>"$WORK/ids.txt"
  done
}

run_engine() { # engine
  local engine=$1 store=() import_line token
  log "[$engine] in-process import ($ROUNDS rounds: the first cold, the rest warm)"
  local inproc=(dotnet "$WORK/inproc/Wardline.Bench.dll" "$DATA" --rounds "$ROUNDS")
  [ "$engine" = postgres ] && inproc+=(--db "$WARDLINE_TEST_POSTGRES")
  SERVER_PID=
  measure "$engine.inproc" "${inproc[@]}" | tee "$WORK/inproc-$engine.txt" >&2
  python3 - "$engine" "$WORK/inproc-$engine.txt" >>"$RESULTS" <<'PY'
import re, sys
for line in open(sys.argv[2]):
    m = re.search(r"round (\d+) \((\w+)\) import: (\d+) resources in (\d+) ms \(parse (\d+) ms\) = (\d+)/s", line)
    if m:
        r, _, n, ms, parse, rate = m.groups()
        print(f"{sys.argv[1]}.inproc.r{r}.resources={n}\n{sys.argv[1]}.inproc.r{r}.ms={ms}\n{sys.argv[1]}.inproc.r{r}.parse_ms={parse}\n{sys.argv[1]}.inproc.r{r}.rate={rate}")
PY

  if [ "$engine" = sqlite ]; then
    store=(--data "$WORK/store-sqlite")
  else
    "$WARDLINE_PG_BIN/psql" -h 127.0.0.1 -p "$WARDLINE_PGPORT" -U postgres -q -c "CREATE DATABASE wlbench_serve" >/dev/null
    store=(--db "Host=127.0.0.1;Port=$WARDLINE_PGPORT;Username=postgres;Database=wlbench_serve;Maximum Pool Size=100" --keyring "$WORK/pg-keyring.json")
  fi

  log "[$engine] CLI import (wardline import)"
  measure "$engine.cli" "${WL[@]}" import "${store[@]}" "$DATA" >"$WORK/cli-$engine.txt" 2>&1 || { cat "$WORK/cli-$engine.txt" >&2; return 1; }
  import_line=$(grep 'files imported' "$WORK/cli-$engine.txt" | tail -1)
  log "[$engine] $import_line"
  python3 - "$engine" "$import_line" >>"$RESULTS" <<'PY'
import re, sys
m = re.search(r"(\d+) of (\d+) files imported, (\d+) resources in ([\d.]+) s \((\d+) resources/s\)", sys.argv[2])
e = sys.argv[1]
if m:
    ok, files, n, s, rate = m.groups()
    print(f"{e}.cli.files_ok={ok}\n{e}.cli.files={files}\n{e}.cli.resources={n}\n{e}.cli.seconds={s}\n{e}.cli.rate={rate}")
PY

  "${WL[@]}" users add bench "${store[@]}" >/dev/null
  token=$("${WL[@]}" token "${store[@]}" --user bench --minutes 120 | tail -1)
  start_server "$engine" "${store[@]}"
  fetch_ids "$token"
  put "$engine.ids" "$(wc -l <"$WORK/ids.txt")"
  export WL_TOKEN=$token WL_IDS=$WORK/ids.txt
  export WL_PATIENT
  WL_PATIENT=$(grep -m1 '^Patient/' "$WORK/ids.txt")
  local url="http://127.0.0.1:$PORT"

  log "[$engine] read-by-id, 1 connection"
  wrk -t1 -c1 -d"${WARMUP}s" -s bench/lua/read.lua "$url" >/dev/null
  measure "$engine.read1" wrk -t1 -c1 -d"${DURATION}s" --latency -s bench/lua/read.lua "$url" >"$WORK/read1-$engine.txt"
  kv_from "$engine.read1" <"$WORK/read1-$engine.txt"

  log "[$engine] read-by-id, 32 connections"
  wrk -t2 -c32 -d"${WARMUP}s" -s bench/lua/read.lua "$url" >/dev/null
  measure "$engine.read32" wrk -t2 -c32 -d"${DURATION}s" --latency -s bench/lua/read.lua "$url" >"$WORK/read32-$engine.txt"
  kv_from "$engine.read32" <"$WORK/read32-$engine.txt"

  log "[$engine] reads at a fixed 1,000 req/s (h2load, 10 clients x 100 req/s)"
  python3 -c 'import random,sys; ids=open(sys.argv[1]).read().split(); random.shuffle(ids); print("\n".join(sys.argv[2] + "/fhir/" + i for i in ids * 30))' \
    "$WORK/ids.txt" "$url" >"$WORK/urls.txt"
  measure "$engine.fixed" h2load --h1 -t1 -c10 --rps 100 --warm-up-time "${WARMUP}s" -D "${DURATION}s" \
    -i "$WORK/urls.txt" -H "Authorization: Bearer $token" -H "Accept: application/fhir+json" \
    --log-file "$WORK/fixed-$engine.log" >"$WORK/fixed-$engine.txt"
  python3 - "$engine" "$WORK/fixed-$engine.log" "$DURATION" "$WARMUP" >>"$RESULTS" <<'PY'
import sys
e, path, duration, warmup = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
rows = [l.split("\t") for l in open(path) if l.strip()]
rows = [(int(r[0]), int(r[1]), int(r[2])) for r in rows]
t0 = min(r[0] for r in rows)
span = (max(r[0] for r in rows) - t0) / 1e6
if span > duration + warmup / 2:  # the log holds the warm-up too: drop it
    rows = [r for r in rows if r[0] >= t0 + warmup * 1e6]
    span = (max(r[0] for r in rows) - min(r[0] for r in rows)) / 1e6
lat = sorted(r[2] for r in rows)
q = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))]
bad = sum(1 for r in rows if not 200 <= r[1] < 300)
print(f"{e}.fixed.requests={len(rows)}\n{e}.fixed.rps={len(rows) / max(span, 1e-9):.1f}\n{e}.fixed.p50_us={q(50)}\n{e}.fixed.p90_us={q(90)}\n{e}.fixed.p99_us={q(99)}\n{e}.fixed.max_us={lat[-1]}\n{e}.fixed.errors={bad}")
PY

  log "[$engine] create/read/update/delete mix, 32 connections"
  wrk -t2 -c32 -d"${WARMUP}s" -s bench/lua/crud.lua "$url" >/dev/null
  measure "$engine.crud" wrk -t2 -c32 -d"${DURATION}s" --latency -s bench/lua/crud.lua "$url" >"$WORK/crud-$engine.txt"
  kv_from "$engine.crud" <"$WORK/crud-$engine.txt"

  stop_server
  grep -iE 'fail|error|exception' "$WORK/server-$engine.log" | head -5 | sed "s/^/[$engine server] /" >&2 || true
}

run_engine sqlite
run_engine postgres

put machine.loadavg_end "$(cut -d' ' -f1-3 /proc/loadavg)"
put run.elapsed_s "$(($(date +%s) - STARTED))"
cp "$RESULTS" "$ROOT/bench/last-results.txt"
python3 bench/report.py "$RESULTS" >"$ROOT/docs/benchmarks.md"
log "wrote docs/benchmarks.md (raw figures: bench/last-results.txt) in $(($(date +%s) - STARTED)) s"
