#!/bin/sh
# apt-install.sh PACKAGE...: install Debian packages for the tests and
# tools (HAProxy, wrk, Caddy) without ever starting their system services:
# while installing, a policy-rc.d that forbids service starts is in place
# (unless one exists already), and afterwards each package's unit of the
# same name is stopped and disabled where systemd runs. Needs root or sudo.
# On failure it prints the tail of apt's output and exits 1.
set -eu
[ $# -gt 0 ] || { echo "usage: apt-install.sh PACKAGE..." >&2; exit 2; }

command -v apt-get >/dev/null 2>&1 || {
	echo "apt-install.sh: apt-get not found: install $* with your package manager" >&2
	exit 1
}
SUDO=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || {
		echo "apt-install.sh: installing $* needs root: run 'apt-get install -y $*' as root" >&2
		exit 1
	}
	SUDO=sudo
fi

# Forbid the packages' maintainer scripts to start their services.
POLICY=/usr/sbin/policy-rc.d
OURS=
if [ ! -e "$POLICY" ]; then
	printf '#!/bin/sh\n# temporary, from baton scripts/apt-install.sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
	$SUDO chmod 755 "$POLICY"
	OURS=1
fi
LOG=$(mktemp)
cleanup() {
	if [ -n "$OURS" ]; then $SUDO rm -f "$POLICY"; fi
	rm -f "$LOG"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if ! { $SUDO apt-get update && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"; } >"$LOG" 2>&1; then
	echo "apt-install.sh: apt-get install $* failed:" >&2
	tail -n 20 "$LOG" >&2
	exit 1
fi

# Whoever needs these runs them in the foreground: leave the system's units
# stopped and disabled (only where systemd is running).
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	for p in "$@"; do $SUDO systemctl disable --now "$p" >/dev/null 2>&1 || true; done
fi
