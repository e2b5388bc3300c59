#!/bin/sh
# install-tools.sh: install what make bench needs besides HAProxy
# (scripts/install-haproxy.sh): wrk, h2load (nghttp2-client) and Caddy from
# the Debian archive.
# Idempotent. Caddy is optional: when the archive has no caddy package the
# benchmark runs without its column (and says so). The package's system
# service is never left running (scripts/apt-install.sh). Needs root (or
# sudo) to install.
set -eu

missing=
command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
command -v h2load >/dev/null 2>&1 || missing="$missing nghttp2-client"
if ! command -v caddy >/dev/null 2>&1; then
	if apt-cache policy caddy 2>/dev/null | grep -q 'Candidate: [0-9]'; then
		missing="$missing caddy"
	else
		echo "install-tools.sh: no caddy package in the apt sources: make bench leaves its column out" >&2
	fi
fi
if [ -z "$missing" ]; then
	exit 0
fi

# shellcheck disable=SC2086
sh "$(dirname "$0")/../scripts/apt-install.sh" $missing
echo "installed:$missing"
