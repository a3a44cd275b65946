#!/usr/bin/env bash
# The backup benchmark against restic (issue 5, item 8), on one store of 1,000,000 resources, in one run:
#
#   bench/backup.sh [STEP...]      # steps: machine generate run phases serve (default: all five)
#
#   generate  builds (or reuses) the store: Synthea Patients, Encounters, Observations and Conditions cloned with new
#             ids and written through the server's write path (RecordService.Prepare + RecordStore.WriteAsync:
#             encryption, index, access facts, one ledger entry per version; bench/Wardline.Bench/BackupStoreGenerator.cs),
#             kept in $WARDLINE_BACKUP_STORE (default /tmp/wl-backup-1m) for later runs; WARDLINE_BACKUP_RESOURCES sets
#             the size (default 1000000; use 100000 to try the script).
#   run       on a copy of that store, holding the shared build lock (/tmp/wl.lock) throughout, each tool twice:
#               full         `wardline backup now --full` to a new file:// target  vs  `restic backup` of wardline.db
#                            into a new repository (restic 0.14 from Debian, default compression "auto")
#               incremental  10,000 resources (1%) get a new version through the store (`Wardline.Bench backup
#                            update`, not measured), then `wardline backup now` and `restic backup` to the second
#                            full's target/repository; twice, with different resources
#               restore      `wardline restore --to DIR --keyring --witness` (restore, then verification against the
#                            ledger and the witness's signed head: the CLI prints both phases)  vs  `restic restore
#                            latest`, and once more `restic restore --verify` (restic re-reads what it wrote)
#             every command under /usr/bin/time -v (wall, user+sys CPU, max RSS); bytes on the target with du -sb;
#             then, still under the lock, where Wardline's time goes: a full backup and the restore replayed step by
#             step with one stopwatch per step (bench/Wardline.Bench/BackupProfile.cs).
#
#   phases    on another copy, under the lock: a full backup and two incrementals after 1% changes run in-process
#             (BackupWriter.RunAsync, as `wardline backup now` runs it) with the time of each phase it reports, and the
#             CLI's fixed cost (`backup now` with nothing new).
#
#   serve     the product's continuous mode, on another copy, under the lock: `wardline serve` with Wardline:Backup:Target
#             a new file:// target and IntervalSeconds 0 (no timer; DrillIntervalHours 0), an administrator's token
#             (`wardline users add` + `wardline token`), then `POST /backup/run?full=true` (the chain's full backup), and
#             three times: 1% updated through the store by another process while the server runs (not measured), then
#             `POST /backup/run` timed from request to response by curl (the server's own figure and its CPU beside it);
#             last, once more right after (nothing new but the previous run's own ledger entry).
#
#   floor     what any restore of "a full backup, then 1% of the resources changed" must cost on this machine, in one
#             locked run beside the product and restic on the same change (issue 5's restore target): on another
#             copy, a full backup (Wardline and restic), 1% updated (seed 1), the incremental (both), then
#               restic      `restic restore latest` (twice)
#               wardline    `wardline restore` of the chain (twice; the CLI prints image, rows and verification)
#               image       the 3.67 GB file written from one in the page cache, with and without fsync: a floor
#                           under any restore that produces the file (restic's and ours), with no decoding at all
#               rows        the rows the change added or replaced (found by comparing the two states), applied
#                           to that written file by the sqlite3 shell in one transaction with no journal, then the
#                           file fsync'd: the floor of a row-level incremental's restore (no decoding, no .NET)
#               pages       the 4 KB pages that differ between the two states (bench/pagediff.py), their zstd -1
#                           size, and writing them into the image in place with fsync: what a page-level incremental
#                           would carry and cost to restore instead
#
# Raw outputs go to bench/results/backup/ (machine.txt, generate.txt, run.txt, summary.txt, phases.txt, serve.txt,
# floor.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
STORE=${WARDLINE_BACKUP_STORE:-/tmp/wl-backup-1m}
RESOURCES=${WARDLINE_BACKUP_RESOURCES:-1000000}
CHANGED=$((RESOURCES / 100))
OUT=${WARDLINE_BACKUP_OUT:-bench/results/backup}
mkdir -p "$OUT"
STEPS=("$@")
[ ${#STEPS[@]} -gt 0 ] || STEPS=(machine generate run phases serve)
want() { local s; for s in "${STEPS[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
command -v restic >/dev/null || { log "installing restic from Debian"; apt-get install -y restic >/dev/null || sudo apt-get install -y restic >/dev/null; }
[ -x /usr/bin/time ] || { apt-get install -y time >/dev/null || sudo apt-get install -y time >/dev/null; }

# Commit bfd13d2 changed migration 8 in place (backup_runs.immutability, backup_drills.trigger_by) instead of adding a
# migration, so a store made at schema 8 before it fails every backup ("no such column"). Until src/ adds the migration,
# a store generated earlier gets the two columns here, as the new migration 8 creates them (the tables are empty of drills).
if [ -f "$STORE/wardline.db" ]; then
  cols=$(sqlite3 "$STORE/wardline.db" "SELECT group_concat(name) FROM pragma_table_info('backup_runs')")
  case ",$cols," in *,immutability,*) ;; *) log "adding backup_runs.immutability to $STORE (schema 8 before bfd13d2)"; sqlite3 "$STORE/wardline.db" "ALTER TABLE backup_runs ADD COLUMN immutability TEXT";; esac
  cols=$(sqlite3 "$STORE/wardline.db" "SELECT group_concat(name) FROM pragma_table_info('backup_drills')")
  case ",$cols," in *,trigger_by,*) ;; *) log "adding backup_drills.trigger_by to $STORE (schema 8 before bfd13d2)"; sqlite3 "$STORE/wardline.db" "ALTER TABLE backup_drills ADD COLUMN trigger_by TEXT NOT NULL DEFAULT ''";; esac
fi

WORK=$(mktemp -d ${WARDLINE_BACKUP_WORK:-/tmp}/wardline-backup-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
log "building bench/Wardline.Bench and the CLI (Release, under /tmp/wl.lock), copied to $WORK"
flock /tmp/wl.lock bash -c '
  set -e
  dotnet build bench/Wardline.Bench/Wardline.Bench.csproj -c Release -nologo -clp:ErrorsOnly -v:q
  dotnet build src/Wardline/Wardline.csproj -c Release -nologo -clp:ErrorsOnly -v:q
  cp -r bench/Wardline.Bench/bin/Release/net10.0 "$1/inproc"
  cp -r src/Wardline/bin/Release/net10.0 "$1/cli"
' _ "$WORK"
B=(dotnet "$WORK/inproc/Wardline.Bench.dll" backup)
WL="$WORK/cli/wardline"

stamp() { echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), load $(cut -d' ' -f1-3 /proc/loadavg), commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' + uncommitted changes in src/')"; }

if want machine; then
  {
    stamp
    echo "nproc=$(nproc)"
    echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "mem_gib=$(awk '/MemTotal/ {printf "%.1f", $2/1048576}' /proc/meminfo)"
    echo "kernel=$(uname -sr)"
    echo "dotnet=$(dotnet --list-runtimes | awk '/Microsoft.NETCore.App/ {v=$2} END {print v}')"
    echo "restic=$(restic version)"
    echo "fs=$(df -T /tmp | awk 'NR==2 {print $1" ("$2")"}')"
  } | tee "$OUT/machine.txt"
fi

if want generate; then
  log "generate: building (or reusing) a $RESOURCES-resource store in $STORE"
  { stamp; "${B[@]}" generate --data "$STORE" --resources "$RESOURCES"; } | tee -a "$OUT/generate.txt" | grep -v '^  [0-9]' || true
fi

if want phases; then
  [ -f "$STORE/bench-ids.txt" ] || { log "no generated store in $STORE: run the generate step first"; exit 2; }
  log "phases: copying the store to $WORK/pstore (not measured)"
  cp -a "$STORE" "$WORK/pstore" && sync  # its write-back would otherwise run during the first measured step
  {
    stamp
    flock /tmp/wl.lock bash -c '
      set -euo pipefail
      WORK=$1 P=$2 WL=$3 CHANGED=$4; shift 4; B=("$@")
      echo "--- a full backup, in-process, with the phases BackupWriter reports"
      "${B[@]}" profile-run --data "$P" --target "file://$WORK/ptarget" --full
      for r in 1 2; do
        echo "--- update $CHANGED resources (seed $((r + 10))), not measured"
        "${B[@]}" update --data "$P" --count "$CHANGED" --seed $((r + 10))
        echo "--- the incremental backup after it, in-process"
        "${B[@]}" profile-run --data "$P" --target "file://$WORK/ptarget"
      done
      echo "--- the CLI with nothing new to ship (its fixed cost: start-up, store and keyring, reading the target)"
      for r in 1 2; do /usr/bin/time -f "TIME wardline-unchanged-$r wall_s=%e user_s=%U sys_s=%S" "$WL" backup now --data "$P" --target "file://$WORK/ptarget" 2>&1 | grep -v "^\s*$" | tail -2; done
    ' _ "$WORK" "$WORK/pstore" "$WL" "$CHANGED" "${B[@]}"
  } 2>&1 | tee "$OUT/phases.txt"
fi

if want run; then
  [ -f "$STORE/bench-ids.txt" ] || { log "no generated store in $STORE: run the generate step first"; exit 2; }
  export RESTIC_PASSWORD=wardline-bench-restic
  # One measured command: its output, then /usr/bin/time's wall, CPU and memory, on one "TIME" line.
  timed() {
    local label=$1; shift
    echo "--- $label: $*"
    local rc=0
    /usr/bin/time -v -o "$WORK/time.txt" "$@" >"$WORK/out.txt" 2>&1 || rc=$?
    sed 's/\x1b\[[0-9;?]*[A-Za-z]//g' "$WORK/out.txt" | grep -v '^\s*$' | tail -12 || true
    [ "$rc" = 0 ] || { echo "FAILED $label: exit code $rc"; return "$rc"; }
    awk -v l="$label" -F': ' '
      /Elapsed \(wall clock\)/ { n = split($2, p, ":"); w = (n == 3) ? p[1]*3600 + p[2]*60 + p[3] : p[1]*60 + p[2] }
      /User time/ { u = $2 } /System time/ { s = $2 } /Maximum resident/ { m = $2 } /Percent of CPU/ { c = $2 }
      END { printf "TIME %s wall_s=%.2f user_s=%.2f sys_s=%.2f cpu=%s maxrss_mib=%.0f\n", l, w, u, s, c, m/1024 }' "$WORK/time.txt"
  }
  bytes() { echo "BYTES $1 $(du -sb "$2" | cut -f1)"; }
  log "run: copying the store to $WORK/store (not measured)"
  cp -a "$STORE" "$WORK/store" && sync  # its write-back would otherwise run during the first measured step
  rm -f "$WORK/store/bench-ids.txt.partial"
  S=$WORK/store
  # restic backs up the database file; the store is closed, so the WAL is checkpointed into it first.
  sqlite3 "$S/wardline.db" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
  log "run: measuring under /tmp/wl.lock (each tool twice)"
  {
    stamp
    flock /tmp/wl.lock bash -c '
      set -euo pipefail
      '"$(declare -f timed bytes)"'
      WORK=$1 S=$2 WL=$3 CHANGED=$4; shift 4; B=("$@")
      echo "store: $(du -sb "$S/wardline.db" | cut -f1) bytes in wardline.db, $(sqlite3 "$S/wardline.db" "SELECT COUNT(*) FROM resources") resources, $(sqlite3 "$S/wardline.db" "SELECT COUNT(*) FROM resource_versions") versions, $(sqlite3 "$S/wardline.db" "SELECT COUNT(*) FROM ledger_entries") ledger entries"
      for r in 1 2; do
        timed "wardline-full-$r" "$WL" backup now --full --data "$S" --target "file://$WORK/wl-$r"
        bytes "wardline-full-$r" "$WORK/wl-$r"
        sqlite3 "$S/wardline.db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
        restic init -q -r "$WORK/restic-$r" >/dev/null
        timed "restic-full-$r" restic -r "$WORK/restic-$r" backup "$S/wardline.db"
        bytes "restic-full-$r" "$WORK/restic-$r"
      done
      for r in 1 2; do
        echo "--- update $CHANGED resources (seed $r), not measured"
        "${B[@]}" update --data "$S" --count "$CHANGED" --seed "$r"
        sqlite3 "$S/wardline.db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
        before=$(du -sb "$WORK/wl-2" | cut -f1)
        timed "wardline-incr-$r" "$WL" backup now --data "$S" --target "file://$WORK/wl-2"
        echo "BYTES wardline-incr-$r $(( $(du -sb "$WORK/wl-2" | cut -f1) - before ))"
        sqlite3 "$S/wardline.db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
        before=$(du -sb "$WORK/restic-2" | cut -f1)
        timed "restic-incr-$r" restic -r "$WORK/restic-2" backup "$S/wardline.db"
        echo "BYTES restic-incr-$r $(( $(du -sb "$WORK/restic-2" | cut -f1) - before ))"
      done
      for r in 1 2; do
        timed "wardline-restore-$r" "$WL" restore --from "file://$WORK/wl-2" --to "$WORK/wl-restore-$r" --keyring "$S/keyring.json" --witness "$S/witness"
        bytes "wardline-restore-$r" "$WORK/wl-restore-$r"
        rm -rf "$WORK/wl-restore-$r"
        timed "restic-restore-$r" restic -r "$WORK/restic-2" restore latest --target "$WORK/restic-restore-$r"
        bytes "restic-restore-$r" "$WORK/restic-restore-$r"
        rm -rf "$WORK/restic-restore-$r"
      done
      timed "restic-restore-verify" restic -r "$WORK/restic-2" restore latest --verify --target "$WORK/restic-restore-v"
      rm -rf "$WORK/restic-restore-v"
      echo "--- profile: a full backup of the same store replayed step by step (Wardline.Bench backup profile-backup)"
      "${B[@]}" profile-backup --data "$S" --target "file://$WORK/profile-target"
      rm -rf "$WORK/profile-target"
      echo "--- profile: the restore of the second chain replayed step by step (Wardline.Bench backup profile-restore)"
      "${B[@]}" profile-restore --data "$S" --from "file://$WORK/wl-2" --to "$WORK/profile-restore"
      rm -rf "$WORK/profile-restore"
    ' _ "$WORK" "$S" "$WL" "$CHANGED" "${B[@]}"
  } 2>&1 | tee "$OUT/run.txt"
  grep -E '^(TIME|BYTES|store:)' "$OUT/run.txt" | tee "$OUT/summary.txt"
fi

if want floor; then
  [ -f "$STORE/bench-ids.txt" ] || { log "no generated store in $STORE: run the generate step first"; exit 2; }
  export RESTIC_PASSWORD=wardline-bench-restic
  log "floor: copying the store to $WORK/fstore (not measured)"
  cp -a "$STORE" "$WORK/fstore" && sync
  sqlite3 "$WORK/fstore/wardline.db" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
  cat > "$WORK/inc.sql" <<SQL
ATTACH '$WORK/before.db' AS b; ATTACH '$WORK/fstore/wardline.db' AS a;
CREATE TABLE ch AS SELECT n.rid, n.res_type, n.res_id, COALESCE(o.version, 0) AS old FROM a.resources n LEFT JOIN b.resources o ON o.rid = n.rid
  WHERE o.rid IS NULL OR o.version <> n.version OR o.deleted <> n.deleted;
CREATE TABLE resources AS SELECT * FROM a.resources WHERE rid IN (SELECT rid FROM ch);
CREATE TABLE data_keys AS SELECT * FROM a.data_keys WHERE (res_type, res_id) IN (SELECT res_type, res_id FROM ch);
CREATE TABLE access_facts AS SELECT * FROM a.access_facts WHERE rid IN (SELECT rid FROM ch);
CREATE TABLE care_relations AS SELECT * FROM a.care_relations WHERE rid IN (SELECT rid FROM ch);
CREATE TABLE search_token AS SELECT * FROM a.search_token WHERE rid IN (SELECT rid FROM ch);
CREATE TABLE search_ref AS SELECT * FROM a.search_ref WHERE rid IN (SELECT rid FROM ch);
CREATE TABLE search_date AS SELECT * FROM a.search_date WHERE rid IN (SELECT rid FROM ch);
CREATE TABLE resource_versions AS SELECT v.* FROM a.resource_versions v JOIN ch ON v.res_type = ch.res_type AND v.res_id = ch.res_id AND v.version > ch.old;
CREATE TABLE ledger_entries AS SELECT * FROM a.ledger_entries WHERE idx >= (SELECT size FROM b.ledger_state);
CREATE TABLE ledger_nodes AS SELECT * FROM a.ledger_nodes n WHERE NOT EXISTS (SELECT 1 FROM b.ledger_nodes o WHERE o.level = n.level AND o.idx = n.idx);
CREATE TABLE ledger_heads AS SELECT * FROM a.ledger_heads WHERE size > (SELECT COALESCE(MAX(size), -1) FROM b.ledger_heads);
SELECT 'rows: ' || (SELECT COUNT(*) FROM ch) || ' resources changed; ' || ((SELECT COUNT(*) FROM resources) + (SELECT COUNT(*) FROM data_keys) + (SELECT COUNT(*) FROM access_facts)
  + (SELECT COUNT(*) FROM care_relations) + (SELECT COUNT(*) FROM search_token) + (SELECT COUNT(*) FROM search_ref) + (SELECT COUNT(*) FROM search_date)
  + (SELECT COUNT(*) FROM resource_versions) + (SELECT COUNT(*) FROM ledger_entries) + (SELECT COUNT(*) FROM ledger_nodes) + (SELECT COUNT(*) FROM ledger_heads)) || ' rows to apply';
SQL
  cat > "$WORK/apply.sql" <<SQL
PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-262144; ATTACH '$WORK/inc.db' AS i; BEGIN;
DELETE FROM resources WHERE rid IN (SELECT rid FROM i.ch); INSERT INTO resources SELECT * FROM i.resources;
DELETE FROM data_keys WHERE (res_type, res_id) IN (SELECT res_type, res_id FROM i.ch); INSERT INTO data_keys SELECT * FROM i.data_keys;
DELETE FROM access_facts WHERE rid IN (SELECT rid FROM i.ch); INSERT INTO access_facts SELECT * FROM i.access_facts;
DELETE FROM care_relations WHERE rid IN (SELECT rid FROM i.ch); INSERT INTO care_relations SELECT * FROM i.care_relations;
DELETE FROM search_token WHERE rid IN (SELECT rid FROM i.ch); INSERT INTO search_token SELECT * FROM i.search_token;
DELETE FROM search_ref WHERE rid IN (SELECT rid FROM i.ch); INSERT INTO search_ref SELECT * FROM i.search_ref;
DELETE FROM search_date WHERE rid IN (SELECT rid FROM i.ch); INSERT INTO search_date SELECT * FROM i.search_date;
INSERT INTO resource_versions SELECT * FROM i.resource_versions; INSERT INTO ledger_entries SELECT * FROM i.ledger_entries;
INSERT INTO ledger_nodes SELECT * FROM i.ledger_nodes; INSERT OR IGNORE INTO ledger_heads SELECT * FROM i.ledger_heads; COMMIT;
SQL
  {
    stamp
    flock /tmp/wl.lock bash -c '
      set -euo pipefail
      WORK=$1 S=$2 WL=$3 CHANGED=$4 HERE=$5; shift 5; B=("$@")
      t() { local label=$1; shift; /usr/bin/time -f "TIME $label wall_s=%e user_s=%U sys_s=%S cpu=%P" "$@"; }
      "$WL" backup now --full --data "$S" --target "file://$WORK/wl" | tail -1
      sqlite3 "$S/wardline.db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
      cp "$S/wardline.db" "$WORK/before.db"
      restic init -q -r "$WORK/restic" >/dev/null
      restic -q -r "$WORK/restic" backup "$S/wardline.db" >/dev/null
      echo "--- update $CHANGED resources (seed 1), not measured"
      "${B[@]}" update --data "$S" --count "$CHANGED" --seed 1
      sqlite3 "$S/wardline.db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
      "$WL" backup now --data "$S" --target "file://$WORK/wl" | tail -1
      restic -q -r "$WORK/restic" backup "$S/wardline.db" >/dev/null
      echo "--- the rows the change added or replaced, gathered into inc.db (not measured)"
      sqlite3 "$WORK/inc.db" < "$WORK/inc.sql"
      echo "--- pages that differ between the two states (not measured)"
      python3 "$HERE/pagediff.py" "$WORK/before.db" "$S/wardline.db" "$WORK/pages.bin"
      echo "BYTES pages-zstd $(zstd -1 -q -c "$WORK/pages.bin" | wc -c)"
      sync
      for r in 1 2; do
        t "restic-restore-$r" restic -q -r "$WORK/restic" restore latest --target "$WORK/restic-restore"
        rm -rf "$WORK/restic-restore"
        t "wardline-restore-$r" "$WL" restore --from "file://$WORK/wl" --to "$WORK/wl-restore" --keyring "$S/keyring.json" --witness "$S/witness" 2>&1 | sed "s/\x1b\[[0-9;?]*[A-Za-z]//g" | grep -iE "image|rows|verif|restored|proven|TIME" | tail -8
        rm -rf "$WORK/wl-restore"
        cat "$WORK/before.db" > /dev/null
        t "image-no-fsync-$r" dd if="$WORK/before.db" of="$WORK/image.db" bs=64M status=none
        rm -f "$WORK/image.db"; sync
        t "image-fsync-$r" dd if="$WORK/before.db" of="$WORK/image.db" bs=64M conv=fsync status=none
        t "rows-$r" sqlite3 "$WORK/image.db" < "$WORK/apply.sql" >/dev/null
        t "rows-fsync-$r" sync "$WORK/image.db"
        rm -f "$WORK/image.db"; sync
        dd if="$WORK/before.db" of="$WORK/image.db" bs=64M conv=fsync status=none
        t "pages-$r" python3 "$HERE/pagediff.py" --apply "$WORK/image.db" "$WORK/pages.bin"
        cmp "$WORK/image.db" "$S/wardline.db" && echo "pages: the image with the pages applied is the changed file, byte for byte"
        rm -f "$WORK/image.db"; sync
      done
    ' _ "$WORK" "$WORK/fstore" "$WL" "$CHANGED" "$PWD/bench" "${B[@]}"
  } 2>&1 | tee "$OUT/floor.txt"
fi

if want serve; then
  [ -f "$STORE/bench-ids.txt" ] || { log "no generated store in $STORE: run the generate step first"; exit 2; }
  log "serve: copying the store to $WORK/sstore (not measured)"
  cp -a "$STORE" "$WORK/sstore" && sync  # its write-back would otherwise run during the first measured step
  PORT=${WARDLINE_BACKUP_PORT:-5391}
  {
    stamp
    flock /tmp/wl.lock bash -c '
      set -euo pipefail
      WORK=$1 P=$2 WL=$3 CHANGED=$4 PORT=$5; shift 5; B=("$@")
      echo "quiet-harbour-lantern-4821" | "$WL" users add bench-admin --data "$P" --role administrator --password-stdin
      "$WL" token --data "$P" --user bench-admin --minutes 240 > "$WORK/token"
      printf "{ \"Wardline\": { \"Backup\": { \"Target\": \"file://%s/starget\", \"IntervalSeconds\": 0, \"DrillIntervalHours\": 0 } } }\n" "$WORK" > "$WORK/serve.json"
      cat "$WORK/serve.json"
      t0=$(date +%s.%N)
      "$WL" serve --data "$P" --config "$WORK/serve.json" --urls "http://127.0.0.1:$PORT" > "$WORK/serve.log" 2>&1 &
      pid=$!
      trap "kill $pid 2>/dev/null; wait $pid 2>/dev/null || true" EXIT
      until curl -s -o /dev/null "http://127.0.0.1:$PORT/backup/status"; do
        kill -0 $pid 2>/dev/null || { echo "FAILED: the server exited"; cat "$WORK/serve.log"; exit 1; }
        sleep 0.5
      done
      echo "server up (serving) after $(echo "$(date +%s.%N) - $t0" | bc) s"
      cpu() { awk "{print \$14 + \$15}" /proc/$pid/stat; }
      post() {
        local label=$1 query=$2 before after
        before=$(cpu)
        local w
        w=$(curl -s -o "$WORK/resp.json" -w "%{http_code} %{time_total}" -X POST -H "Authorization: Bearer $(cat "$WORK/token")" "http://127.0.0.1:$PORT/backup/run$query")
        after=$(cpu)
        echo "--- $label: POST /backup/run$query"
        cat "$WORK/resp.json"; echo
        set -- $w
        [ "$1" = 200 ] || { echo "FAILED $label: HTTP $1"; tail -20 "$WORK/serve.log"; exit 1; }
        echo "TIME $label wall_s=$2 server_cpu_s=$(echo "scale=2; ($after - $before) / $(getconf CLK_TCK)" | bc) server_s=$(sed -n "s/.*\"seconds\":\([0-9.]*\).*/\1/p" "$WORK/resp.json") rss_mib=$(awk "/VmRSS/ {printf \"%.0f\", \$2/1024}" /proc/$pid/status)"
      }
      post serve-full "?full=true"
      for r in 1 2 3; do
        echo "--- update $CHANGED resources (seed $((r + 20))) by another process while the server runs, not measured"
        "${B[@]}" update --data "$P" --count "$CHANGED" --seed $((r + 20))
        post "serve-incr-$r" ""
      done
      # Each run appends its own ledger entry, so the next one always ships at least that entry.
      post serve-next ""
      echo "--- the server log (backup lines)"
      grep -E "Backup|ledger checked|started on" "$WORK/serve.log" | cut -c1-220 || true
    ' _ "$WORK" "$WORK/sstore" "$WL" "$CHANGED" "$PORT" "${B[@]}"
  } 2>&1 | tee "$OUT/serve.txt"
  grep -E '^(TIME|server up)' "$OUT/serve.txt" | tee -a "$OUT/summary.txt"
fi
