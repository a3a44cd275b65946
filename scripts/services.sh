#!/usr/bin/env bash
# Installs (from Debian) and starts the services Wardline's tests and benchmarks need, on
# 127.0.0.1 only. Source it: it exports WARDLINE_TEST_POSTGRES and registers a cleanup trap.
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
  wardline_as_postgres "$bin/pg_ctl" -D "$WARDLINE_PGDATA" -l "$WARDLINE_PGDATA/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $WARDLINE_PGPORT -k $WARDLINE_PGDATA -c max_connections=300 -c shared_buffers=256MB" start >/dev/null
  export WARDLINE_TEST_POSTGRES="Host=127.0.0.1;Port=$WARDLINE_PGPORT;Username=postgres;Database=postgres;Pooling=true"
  echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$WARDLINE_PGPORT"
}

wardline_stop_services() {
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
