#!/usr/bin/env bash
# Runs every Wardline test on a fresh Debian machine: installs what the tests need (the .NET SDK
# must be present), starts PostgreSQL on 127.0.0.1, and runs the whole suite (both storage
# engines). Extra arguments go to `dotnet test`, e.g. ./test.sh --filter Crypto
set -euo pipefail
cd "$(dirname "$0")"
. scripts/services.sh
# openssl: the TLS tests drive `openssl s_client` to prove TLS 1.0/1.1 are refused.
wardline_apt_install openssl
dotnet build Wardline.slnx -c Release -nologo -clp:ErrorsOnly
log=$(mktemp)
status=0
dotnet test Wardline.slnx -c Release --no-build -nologo --logger "console;verbosity=minimal" "$@" 2>&1 | tee "$log" || status=$?
# One closing line over all test projects, in the plain form CI reads.
awk '/^(Passed|Failed)!/ { for (i = 1; i <= NF; i++) { if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1); if ($i == "Skipped:") s += $(i+1) } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
rm -f "$log"
exit "$status"
