#!/usr/bin/env bash
# Runs testssl.sh (Debian package) against a running baton with a test
# certificate and prints its findings. Used by `make tls-audit`; loopback
# only, bounded, and it stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v testssl >/dev/null 2>&1; then
  echo "installing testssl.sh from Debian's packages"
  { apt-get install -y testssl.sh >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y testssl.sh >/dev/null; }; }
fi
. scripts/local-baton.sh
echo "testssl.sh against baton on 127.0.0.1:$https (self-signed test certificate: trust findings are expected)"
timeout 600 testssl --quiet --color 0 --warnings off --sneaky --ip one "127.0.0.1:$https" | tee "$work/testssl.txt" || true
echo
echo "== summary =="
grep -E "^ (SSLv2|SSLv3|TLS 1 |TLS 1.1|TLS 1.2|TLS 1.3)|Forward Secrecy|Strict Transport|NOT ok|VULNERABLE|Overall Grade|Grade cap" "$work/testssl.txt" || true
