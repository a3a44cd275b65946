#!/usr/bin/env bash
# Runs every Wardline test on a fresh Debian machine: installs what the tests need (the .NET SDK
# must be present), starts PostgreSQL on 127.0.0.1, and runs the whole suite (both storage
# engines). Extra arguments go to `dotnet test`, e.g. ./test.sh --filter Crypto
set -euo pipefail
cd "$(dirname "$0")"
. scripts/services.sh
# The TLS tests offer TLS 1.0/1.1 with the openssl client (.NET on OpenSSL 3 cannot).
wardline_apt_install openssl
dotnet build Wardline.slnx -c Release -nologo -clp:ErrorsOnly
dotnet test Wardline.slnx -c Release --no-build -nologo --logger "console;verbosity=minimal" "$@"
