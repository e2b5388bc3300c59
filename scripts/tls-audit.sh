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
[ -x bin/baton ] && [ -x bin/demoapp ] || make build >/dev/null
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || shuf -i 20000-60000 -n 1; }
app=$(port); http=$(port); https=$(port); probe=$(port); admin=$(port)
bin/demoapp -name app -listen 127.0.0.1:$app 2>"$work/app.log" & pids+=($!)
cat >"$work/baton.toml" <<TOML
node_name = "audit"
[listen]
http  = "127.0.0.1:$http"
https = "127.0.0.1:$https"
[backend]
url = "http://127.0.0.1:$app"
[probe]
listen = "127.0.0.1:$probe"
[admin]
listen = "127.0.0.1:$admin"
[lease]
backend = "file"
[lease.file]
path = "$work/lease"
[[health.check]]
name = "app"
url = "http://127.0.0.1:$app/healthz"
interval = "500ms"
rise = 1
[tls]
hsts = "8760h"
[[tls.certificate]]
cert_file = "$PWD/config/testdata/files/test.crt"
key_file  = "$PWD/config/testdata/files/test.key"
TOML
bin/baton run -config "$work/baton.toml" 2>"$work/baton.log" & pids+=($!)
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$https) 2>/dev/null && break; sleep 0.1; done
echo "testssl.sh against baton on 127.0.0.1:$https (self-signed test certificate: trust findings are expected)"
timeout 600 testssl --quiet --color 0 --warnings off --sneaky --ip one "127.0.0.1:$https" | tee "$work/testssl.txt" || true
echo
echo "== summary =="
grep -E "^ (SSLv2|SSLv3|TLS 1 |TLS 1.1|TLS 1.2|TLS 1.3)|Forward Secrecy|Strict Transport|NOT ok|VULNERABLE|Overall Grade|Grade cap" "$work/testssl.txt" || true
