#!/usr/bin/env bash
# profile.sh: pprof CPU and allocation profiles of baton under wrk load, for
# the hot-path work of issue 10. It starts the benchmark origin and one
# active baton (file lease, plain HTTP, admin.pprof on behind a token),
# runs wrk -t2 -c64 for PROFILE_SECONDS (default 10) against /small while
# it takes a CPU profile from /debug/pprof/profile, then the allocations of
# that run (/debug/pprof/allocs, delta against a snapshot taken before),
# and prints the top entries (flat and cumulative). Loopback only;
# everything it starts is stopped on exit. Needs wrk (bench/install-tools.sh).
# BATON_ENV="GOGC=100" passes environment to baton; BATON_BACKEND="fast_path
# = false" adds a line to its [backend] section. PROFILE_POST=1024 POSTs a
# body of that many bytes to /post instead. PROFILE_H2=1 loads baton's
# HTTPS listener over HTTP/2 with h2load (-c2 -m32, as block 7 of make
# bench) instead of wrk over HTTP/1.1; PROFILE_HTTPS=1 over HTTPS with
# HTTP/1.1 (block 2). BATON_BIN profiles another binary (not
# stripped). Profiles stay in bin/profile.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bin/profile}
SECS=${PROFILE_SECONDS:-10}
mkdir -p "$OUT"
BIN=${BATON_BIN:-$OUT/baton}
[ -n "${BATON_BIN:-}" ] || go build -o "$OUT/baton" ./cmd/baton # not stripped: pprof shows the symbols
go build -o "$OUT/benchtool" ./bench/benchtool
read -r -d '' O H P A S < <("$OUT/benchtool" ports -n 5; printf '\0') || true
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
"$OUT/benchtool" origin -listen "127.0.0.1:$O" 2>"$OUT/origin.log" &
pids+=($!)
echo "profile-token" >"$OUT/token"
cat >"$OUT/baton.toml" <<TOML
node_name = "profile"
[listen]
http = "127.0.0.1:$H"
https = "127.0.0.1:$S"
[tls]
redirect_http = false
[[tls.certificate]]
cert_file = "$PWD/config/testdata/files/test.crt"
key_file = "$PWD/config/testdata/files/test.key"
[backend]
url = "http://127.0.0.1:$O"
${BATON_BACKEND:-}
[probe]
listen = "127.0.0.1:$P"
[admin]
listen = "127.0.0.1:$A"
token_file = "$PWD/$OUT/token"
pprof = true
[lease]
backend = "file"
retry_interval = "500ms"
[lease.file]
path = "$PWD/$OUT/lease"
[[health.check]]
name = "origin"
type = "http"
url = "http://127.0.0.1:$O/healthz"
interval = "1s"
timeout = "500ms"
rise = 1
[log]
file = "$PWD/$OUT/baton.log"
TOML
rm -f "$OUT/lease"
env ${BATON_ENV:-} "$BIN" run -config "$OUT/baton.toml" &
pids+=($!)
for _ in $(seq 100); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P/probe")" = 200 ] && break
	sleep 0.2
done
pprof_get() { curl -sf -H "Authorization: Bearer profile-token" -o "$2" "http://127.0.0.1:$A/debug/pprof/$1"; }
target=(-- "http://127.0.0.1:$H/small")
if [ -n "${PROFILE_POST:-}" ]; then
	printf 'wrk.method = "POST"\nwrk.body = string.rep("x", %d)\nwrk.headers["Content-Type"] = "application/octet-stream"\n' \
		"$PROFILE_POST" >"$OUT/post.lua"
	target=(-s "$OUT/post.lua" -- "http://127.0.0.1:$H/post")
fi
if [ -n "${PROFILE_HTTPS:-}" ]; then
	printf 'wrk.resolve = function(host, service)\n  wrk.addrs = wrk.lookup("127.0.0.1", service)\nend\n' >"$OUT/sni.lua"
	target=(-s "$OUT/sni.lua" -- "https://baton.test:$S/small")
fi
load() {
	if [ -n "${PROFILE_H2:-}" ]; then
		h2load -t2 -c2 -m32 -D"$1" --connect-to "127.0.0.1:$S" "https://baton.test:$S/small" | grep -E 'finished in|requests:'
	else
		wrk -t2 -c64 -d"$1s" --latency "${target[@]}" | grep -E 'requests in|Requests/sec|99%'
	fi
}
load 2 >/dev/null # warm-up
pprof_get allocs "$OUT/allocs-before.pprof"
pprof_get "profile?seconds=$SECS" "$OUT/cpu.pprof" &
PROF=$!
load "$SECS"
wait "$PROF"
pprof_get allocs "$OUT/allocs-after.pprof"
top() { go tool pprof -top "$@" 2>/dev/null | sed -n "/flat%/,\$p" | head -n "${TOP:-25}" || true; }
echo "== CPU, flat =="
top "$BIN" "$OUT/cpu.pprof"
echo "== CPU, cumulative =="
top -cum "$BIN" "$OUT/cpu.pprof"
echo "== allocations during the run (objects), flat =="
top -sample_index=alloc_objects -diff_base "$OUT/allocs-before.pprof" "$BIN" "$OUT/allocs-after.pprof"
