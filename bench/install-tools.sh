#!/bin/sh
# install-tools.sh: install what make bench needs besides HAProxy
# (scripts/install-haproxy.sh): wrk and Caddy from the Debian archive.
# Idempotent. Caddy is optional: when the archive has no caddy package the
# benchmark runs without its column (and says so). The package's system
# service is never left running: a policy-rc.d forbidding service starts is
# put in place while installing (unless one exists), and caddy.service is
# stopped and disabled if it runs anyway. Needs root (or sudo) to install.
set -eu

missing=
command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
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

SUDO=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || {
		echo "install-tools.sh: missing:$missing; installing needs root: apt-get install -y$missing" >&2
		exit 1
	}
	SUDO=sudo
fi
POLICY=/usr/sbin/policy-rc.d
OURS=
if [ ! -e "$POLICY" ]; then
	printf '#!/bin/sh\n# temporary, from baton bench/install-tools.sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
	$SUDO chmod 755 "$POLICY"
	OURS=1
fi
cleanup() { if [ -n "$OURS" ]; then $SUDO rm -f "$POLICY"; fi; }
trap cleanup EXIT INT TERM

LOG=$(mktemp)
# shellcheck disable=SC2086
if ! { $SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing; } >"$LOG" 2>&1; then
	echo "install-tools.sh: apt-get install$missing failed:" >&2
	tail -n 20 "$LOG" >&2
	rm -f "$LOG"
	exit 1
fi
rm -f "$LOG"
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet caddy 2>/dev/null; then
	$SUDO systemctl stop caddy || true
	$SUDO systemctl disable caddy >/dev/null 2>&1 || true
fi
echo "installed:$missing"
