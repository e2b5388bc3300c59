# local-baton.sh: sourced by scripts that need one running baton with HTTPS
# (tls-audit.sh, h2spec.sh). It starts the demo app and an active baton on
# free loopback ports with the test certificate (file lease, HSTS on) and
# sets: work (a temporary directory), app, http, https, probe, admin
# (ports). Everything it started is stopped, and work removed, on exit.
[ -x bin/baton ] && [ -x bin/demoapp ] || make build >/dev/null
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || shuf -i 20000-60000 -n 1; }
app=$(port); http=$(port); https=$(port); probe=$(port); admin=$(port)
bin/demoapp -name app -listen 127.0.0.1:$app 2>"$work/app.log" & pids+=($!)
cat >"$work/baton.toml" <<TOML
node_name = "local"
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
for _ in $(seq 100); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$probe/probe")" = 200 ] && break
	sleep 0.1
done
