#!/usr/bin/env bash
# The audit ledger's benchmarks (issue 4), through the server's own services (bench/Wardline.Bench/LedgerBenchmark.cs):
#
#   bench/ledger.sh [STEP...]     # steps: machine append profile ceiling verify proofs hash (default: all of them)
#
#   append   durable appends/s with 1, 16 and 64 concurrent writers (LedgerRecorder.RecordAsync, one access record per
#            call, 3 s warm-up + 10 s per writer count), on a fresh SQLite store and a fresh PostgreSQL database
#   profile  where an append's time goes: encode+hash vs the group's SQL vs its commit, per group size
#   ceiling  the floor under any design: groups of G entries made durable with nothing else done (a file + fsync,
#            a three-column SQLite table, a three-column PostgreSQL table), then the append step again in the same run
#   verify   LedgerVerifier (Depth.Startup) over a 1,000,000-entry SQLite ledger, with `openssl speed -evp sha256` in the same run
#   proofs   1,000 inclusion and consistency proofs at random indexes and sizes of a 10,000,000-entry SQLite ledger
#   hash     BenchmarkDotNet: MerkleHash.Leaf of 300 bytes vs SHA256.HashData of the same bytes
#
# The ledgers for verify and proofs are built once and kept (WARDLINE_LEDGER_1M, WARDLINE_LEDGER_10M; under /tmp),
# the 10M one takes a few minutes. Every measurement holds the shared build lock (/tmp/wl.lock) so that no build or
# test runs beside it; building the ledgers does not. Raw outputs go to bench/results/ledger/ (one file per step).
set -euo pipefail
cd "$(dirname "$0")/.."
export WARDLINE_PGPORT=${WARDLINE_PGPORT:-55485}
LEDGER_1M=${WARDLINE_LEDGER_1M:-/tmp/wl-ledger-1m}
LEDGER_10M=${WARDLINE_LEDGER_10M:-/tmp/wl-ledger-10m}
OUT=bench/results/ledger
mkdir -p "$OUT"
STEPS=("$@")
[ ${#STEPS[@]} -gt 0 ] || STEPS=(machine append profile ceiling verify proofs hash)
want() { local s; for s in "${STEPS[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

. scripts/services.sh >/dev/null 2>&1

WORK=$(mktemp -d /tmp/wardline-ledger-bench.XXXXXX)
trap 'rm -rf "$WORK"; wardline_stop_services' EXIT
log "building bench/Wardline.Bench (Release, under /tmp/wl.lock)"
flock /tmp/wl.lock bash -c '
  set -e
  dotnet build bench/Wardline.Bench/Wardline.Bench.csproj -c Release -nologo -clp:ErrorsOnly -v:q
  cp -r bench/Wardline.Bench/bin/Release/net10.0 "$1/inproc"
' _ "$WORK"
B=(dotnet "$WORK/inproc/Wardline.Bench.dll" ledger)

stamp() { echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), load $(cut -d' ' -f1-3 /proc/loadavg), commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' + uncommitted changes in src/')"; }

if want machine; then
  {
    stamp
    echo "nproc=$(nproc)"
    echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "mem_gib=$(awk '/MemTotal/ {printf "%.1f", $2/1048576}' /proc/meminfo)"
    echo "kernel=$(uname -sr)"
    echo "dotnet=$(dotnet --list-runtimes | awk '/Microsoft.NETCore.App/ {v=$2} END {print v}')"
    echo "postgres=$("$WARDLINE_PG_BIN/postgres" --version | awk '{print $3}')"
    echo "openssl=$(openssl version)"
    echo "fs=$(df -T /tmp | awk 'NR==2 {print $1" ("$2")"}')"
  } | tee "$OUT/machine.txt"
fi

if want append; then
  log "append: SQLite"
  { stamp; flock /tmp/wl.lock "${B[@]}" append; } | tee "$OUT/append-sqlite.txt"
  log "append: PostgreSQL"
  { stamp; flock /tmp/wl.lock "${B[@]}" append --db "$WARDLINE_TEST_POSTGRES"; } | tee "$OUT/append-postgres.txt"
fi

if want profile; then
  log "profile: SQLite and PostgreSQL"
  { stamp; flock /tmp/wl.lock "${B[@]}" profile; } | tee "$OUT/profile-sqlite.txt"
  { stamp; flock /tmp/wl.lock "${B[@]}" profile --db "$WARDLINE_TEST_POSTGRES"; } | tee "$OUT/profile-postgres.txt"
fi

if want ceiling; then
  log "ceiling: durable groups with nothing else done, then the product's appends, in one locked run"
  {
    stamp
    flock /tmp/wl.lock bash -c '
      "$@" ceiling --db "$WARDLINE_TEST_POSTGRES" --groups 1,16,64,256
      echo "--- the product path, same run (LedgerRecorder.RecordAsync)"
      "$@" append --writers 1,16,64 --seconds 5 --warmup 2
      "$@" append --db "$WARDLINE_TEST_POSTGRES" --writers 1,16,64 --seconds 5 --warmup 2
    ' _ "${B[@]}"
  } | tee "$OUT/ceiling-and-append.txt"
fi

if want verify; then
  log "verify: building (or reusing) a 1,000,000-entry ledger in $LEDGER_1M"
  "${B[@]}" build --data "$LEDGER_1M" --entries 1000000 | tee -a "$OUT/build-1m.txt" | tail -2
  log "verify: LedgerVerifier and openssl speed, in one locked run"
  {
    stamp
    flock /tmp/wl.lock bash -c '
      "$@" verify --data "'"$LEDGER_1M"'"
      echo "--- openssl speed -seconds 3 -evp sha256 (one thread)"
      openssl speed -seconds 3 -evp sha256 2>/dev/null | tail -3
    ' _ "${B[@]}"
  } | tee "$OUT/verify.txt"
fi

if want proofs; then
  log "proofs: building (or reusing) a 10,000,000-entry ledger of small entries in $LEDGER_10M"
  "${B[@]}" build --data "$LEDGER_10M" --entries 10000000 --small | tee -a "$OUT/build-10m.txt" | tail -2
  log "proofs: 1,000 of each kind"
  { stamp; flock /tmp/wl.lock "${B[@]}" proofs --data "$LEDGER_10M"; } | tee "$OUT/proofs.txt"
fi

if want hash; then
  log "hash: BenchmarkDotNet"
  flock /tmp/wl.lock "${B[@]}" hash --filter '*' >"$WORK/hash.log" 2>&1 || { tail -30 "$WORK/hash.log" >&2; exit 1; }
  { stamp; sed -n '/\/\/ \* Summary \*/,/\/\/ \* Legends \*/p' "$WORK/hash.log"; } | tee "$OUT/hash.txt"
fi
