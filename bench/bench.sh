#!/usr/bin/env bash
# bench.sh: baton's side-by-side data-plane benchmark (make bench).
#
# One run, loopback only, bounded (BENCH_TIMEOUT, default 20m; it takes
# about 15 minutes): the benchmark origin (Go net/http, /small = 13 bytes,
# /large = 64 KiB), baton (active, file lease, HTTP and HTTPS), a second
# baton with the access log on, more batons with other settings
# (BENCH_VARIANTS, default gc_percent 100 and 200 - baton's default is 400
# -, backend.fast_path = false - every request through http.Transport -
# and bin/baton-lean, the bench-only HTTP/1.1 server prototype),
# HAProxy and Caddy from Debian as equivalent reverse proxies, all measured
# with wrk in alternating rounds (and over HTTP/2 with h2load); then the Go
# benchmarks of the request path (allocs/op) and of the fencing check. The table is also written to
# bin/bench.txt. Extra flags for `benchtool run`: BENCH_FLAGS (see
# `bin/benchtool run -h`), e.g. BENCH_FLAGS="-rounds 5".
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bin

bash scripts/install-haproxy.sh >/dev/null || echo "bench: HAProxy is not installed: its column is left out" >&2
bash bench/install-tools.sh
go build -o bin/benchtool ./bench/benchtool
# Bench only, never shipped: the lean HTTP/1.1 server prototype (bench/README.md).
CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -tags leanh1 -o bin/baton-lean ./cmd/baton

variants=()
for v in ${BENCH_VARIANTS-gc100:runtime.gc_percent=100 gc200:runtime.gc_percent=200 std:backend.fast_path=false lean:binary=bin/baton-lean}; do variants+=(-variant "$v"); done
# shellcheck disable=SC2086
timeout --foreground "${BENCH_TIMEOUT:-20m}" bin/benchtool run "${variants[@]}" ${BENCH_FLAGS:-} | tee bin/bench.txt

echo
echo "== Go benchmarks of the request path (go test -bench, -benchmem) =="
{
	go test -run '^$' -bench . -benchmem -benchtime "${BENCH_GOTIME:-1s}" ./proxy/
	go test -run '^$' -bench '^BenchmarkFence$' -benchmem -benchtime "${BENCH_GOTIME:-1s}" ./lease/
} 2>&1 | grep -E '^(Benchmark|FAIL|ok|---)' | tee -a bin/bench.txt
