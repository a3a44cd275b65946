#!/usr/bin/env bash
# Installs (from Debian) and starts the services Wardline's tests and benchmarks need, on
# 127.0.0.1 only. Source it: it exports WARDLINE_TEST_POSTGRES, WARDLINE_TEST_AZURITE and
# WARDLINE_TEST_S3, and registers a cleanup trap.
#   . scripts/services.sh
set -euo pipefail

wardline_apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if ((${#missing[@]})); then
    echo "installing from Debian: ${missing[*]}"
    if [ "$(id -u)" -eq 0 ]; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      sudo apt-get update -qq
      sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
  fi
}

wardline_as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Closes every descriptor above 2 this (sub)shell inherited. The services outlive the command that started them:
# started by a command run under `flock FILE ...`, they would otherwise keep its lock (an open descriptor of FILE)
# after it exits, and every later `flock FILE` would wait for them.
wardline_close_inherited() {
  local fd
  for fd in /proc/$BASHPID/fd/*; do
    fd=${fd##*/}
    if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-" 2>/dev/null || true; fi
  done
}

wardline_start_postgres() {
  wardline_apt_install postgresql
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  # Known before start, so the EXIT trap can stop (or clean up after) a server that failed to start.
  export WARDLINE_PG_BIN="$bin"
  WARDLINE_PGDATA=$(mktemp -d /tmp/wardline-pg.XXXXXX)
  WARDLINE_PGPORT=${WARDLINE_PGPORT:-55432}
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$WARDLINE_PGDATA"
  wardline_as_postgres "$bin/initdb" -D "$WARDLINE_PGDATA" -A trust -U postgres >/dev/null
  # Tests create and drop many databases; fsync stays on so durability tests mean something.
  (wardline_close_inherited; wardline_as_postgres "$bin/pg_ctl" -D "$WARDLINE_PGDATA" -l "$WARDLINE_PGDATA/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $WARDLINE_PGPORT -k $WARDLINE_PGDATA -c max_connections=300 -c shared_buffers=256MB" start >/dev/null)
  export WARDLINE_TEST_POSTGRES="Host=127.0.0.1;Port=$WARDLINE_PGPORT;Username=postgres;Database=postgres;Pooling=true"
  echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$WARDLINE_PGPORT"
}

# Node tools (Azurite, s3rver) are installed with npm into a cache folder outside the repository,
# pinned, once per machine.
WARDLINE_NODE_DIR=${WARDLINE_NODE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/wardline-node}

wardline_npm_install() {
  command -v npm >/dev/null 2>&1 || wardline_apt_install nodejs npm
  local missing=()
  for spec in "$@"; do
    local name=${spec%@*} version=${spec##*@}
    local installed
    installed=$(node -p "try { require('$WARDLINE_NODE_DIR/node_modules/$name/package.json').version } catch { '' }")
    [ "$installed" = "$version" ] || missing+=("$spec")
  done
  if ((${#missing[@]})); then
    echo "installing from npm into $WARDLINE_NODE_DIR: ${missing[*]}"
    mkdir -p "$WARDLINE_NODE_DIR"
    npm install --prefix "$WARDLINE_NODE_DIR" --no-audit --no-fund --loglevel=error "${missing[@]}" >/dev/null
  fi
}

wardline_free_port() {
  node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'
}

# Waits until something accepts connections on 127.0.0.1:$1 (at most 30 s).
wardline_wait_port() {
  local port=$1 name=$2 i
  for i in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$name did not start on 127.0.0.1:$port" >&2
  return 1
}

wardline_start_azurite() {
  wardline_npm_install azurite@3.37.0
  WARDLINE_AZURITE_DIR=$(mktemp -d /tmp/wardline-azurite.XXXXXX)
  local port
  port=$(wardline_free_port)
  (wardline_close_inherited; exec "$WARDLINE_NODE_DIR/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 --blobPort "$port" \
    --location "$WARDLINE_AZURITE_DIR" --silent --disableTelemetry) >"$WARDLINE_AZURITE_DIR/azurite.log" 2>&1 &
  WARDLINE_AZURITE_PID=$!
  wardline_wait_port "$port" Azurite
  # Azurite's well-known development account and key (public, documented by Microsoft; not a secret).
  export WARDLINE_TEST_AZURITE="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:$port/devstoreaccount1;"
  echo "Azurite $("$WARDLINE_NODE_DIR/node_modules/.bin/azurite-blob" --version) (blob) on 127.0.0.1:$port"
}

wardline_start_s3rver() {
  wardline_npm_install s3rver@3.7.1
  WARDLINE_S3RVER_DIR=$(mktemp -d /tmp/wardline-s3rver.XXXXXX)
  local port
  port=$(wardline_free_port)
  # s3rver's ListObjectsV2 continuation tokens use DES, which OpenSSL 3 keeps in its legacy provider: without it
  # a listing longer than one page (1,000 keys) fails with HTTP 500.
  local legacy=""
  node --openssl-legacy-provider -e 0 >/dev/null 2>&1 && legacy="--openssl-legacy-provider"
  (wardline_close_inherited; export NODE_OPTIONS="${NODE_OPTIONS:-} $legacy"; exec "$WARDLINE_NODE_DIR/node_modules/.bin/s3rver" --address 127.0.0.1 --port "$port" \
    --directory "$WARDLINE_S3RVER_DIR" --silent) >"$WARDLINE_S3RVER_DIR.log" 2>&1 &
  WARDLINE_S3RVER_PID=$!
  wardline_wait_port "$port" s3rver
  # s3rver accepts the access key S3RVER with the secret S3RVER.
  export WARDLINE_TEST_S3="http://127.0.0.1:$port"
  echo "s3rver $("$WARDLINE_NODE_DIR/node_modules/.bin/s3rver" --version) on 127.0.0.1:$port"
}

wardline_stop_services() {
  if [ -n "${WARDLINE_AZURITE_PID:-}" ]; then kill "$WARDLINE_AZURITE_PID" 2>/dev/null || true; wait "$WARDLINE_AZURITE_PID" 2>/dev/null || true; fi
  if [ -n "${WARDLINE_AZURITE_DIR:-}" ]; then rm -rf "$WARDLINE_AZURITE_DIR"; fi
  if [ -n "${WARDLINE_S3RVER_PID:-}" ]; then kill "$WARDLINE_S3RVER_PID" 2>/dev/null || true; wait "$WARDLINE_S3RVER_PID" 2>/dev/null || true; fi
  if [ -n "${WARDLINE_S3RVER_DIR:-}" ]; then rm -rf "$WARDLINE_S3RVER_DIR" "$WARDLINE_S3RVER_DIR.log"; fi
  if [ -n "${WARDLINE_PGDATA:-}" ] && [ -d "$WARDLINE_PGDATA" ]; then
    wardline_as_postgres "$WARDLINE_PG_BIN/pg_ctl" -D "$WARDLINE_PGDATA" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$WARDLINE_PGDATA"
  fi
}

trap wardline_stop_services EXIT
# The console's browser tests drive Debian's chromium through Playwright (no browser download).
wardline_apt_install chromium
# A real SMTP server for notification tests (aiosmtpd, started by the tests themselves on 127.0.0.1).
wardline_apt_install python3-aiosmtpd
wardline_start_postgres
# Backup targets: Azure Blob Storage (Azurite) and S3 (s3rver), from npm.
wardline_start_azurite
wardline_start_s3rver
