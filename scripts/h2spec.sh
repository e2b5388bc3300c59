#!/usr/bin/env bash
# Runs h2spec (HTTP/2 conformance, RFC 7540/7541; pinned in tools/go.mod)
# against a running baton's HTTPS listener (HTTP/2 over TLS, the demo app
# behind it) and prints its summary. Used by `make h2spec`; loopback only,
# bounded, and it stops everything it started. H2SPEC_FLAGS adds flags,
# e.g. H2SPEC_FLAGS=-S for the strict cases too.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
"$GO" build -modfile=tools/go.mod -o bin/h2spec github.com/summerwind/h2spec/cmd/h2spec
. scripts/local-baton.sh
echo "h2spec against baton on 127.0.0.1:$https (TLS, ALPN h2)"
# shellcheck disable=SC2086
timeout 300 bin/h2spec -t -k -h 127.0.0.1 -p "$https" -o 2 ${H2SPEC_FLAGS:-} >"$work/h2spec.txt" || true
sed -n '/^Failures:/,$p' "$work/h2spec.txt"
echo
echo "== summary =="
grep -E '^[0-9]+ tests, [0-9]+ passed' "$work/h2spec.txt" || { echo "h2spec printed no summary"; exit 1; }
# Failures that are net/http's own HTTP/2 server answering differently
# from what h2spec expects (the request is still refused, never proxied):
# connection-specific headers and TE other than "trailers" get a 400
# response instead of a PROTOCOL_ERROR reset, and duplicate settings in
# one SETTINGS frame close the connection. Anything else fails the run.
known='Sends multiple values of SETTINGS_INITIAL_WINDOW_SIZE
Sends a HEADERS frame that contains the connection-specific header field
Sends a HEADERS frame that contains the TE header field with any value other than "trailers"'
new=$(sed -n '/^Failures:/,$p' "$work/h2spec.txt" | sed -n 's/^ *× [0-9]*: //p' | grep -vxF "$known" || true)
if [ -n "$new" ]; then
	echo "h2spec: failures beyond net/http's known HTTP/2 deviations:"
	echo "$new"
	exit 1
fi
echo "h2spec: no failures beyond net/http's known HTTP/2 deviations (see scripts/h2spec.sh)"
