#!/bin/sh
# install-haproxy.sh: install HAProxy from the Debian archive for the
# load-balancer failover tests (e2e/), which run their own haproxy in the
# foreground on loopback. Idempotent: does nothing when haproxy is already
# installed (apt-get update runs only when it is missing). It never starts
# the system service: while installing, a policy-rc.d that forbids service
# starts is in place (unless one exists already), and afterwards the unit is
# stopped and disabled if systemd runs. Installing needs root (or sudo).
# Prints one line.
set -eu

find_haproxy() {
	command -v haproxy 2>/dev/null && return 0
	# Debian puts it in /usr/sbin, which a normal user's PATH may lack.
	[ -x /usr/sbin/haproxy ] && echo /usr/sbin/haproxy && return 0
	return 1
}

if HAPROXY=$(find_haproxy); then
	echo "haproxy already installed: $("$HAPROXY" -v 2>/dev/null | head -n 1)"
	exit 0
fi

command -v apt-get >/dev/null 2>&1 || {
	echo "install-haproxy.sh: haproxy is missing and apt-get not found: install haproxy (>= 2.4) with your package manager" >&2
	exit 1
}
SUDO=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || {
		echo "install-haproxy.sh: haproxy is missing and installing it needs root: run 'apt-get install -y haproxy' as root" >&2
		exit 1
	}
	SUDO=sudo
fi

# Forbid the package's maintainer scripts to start the service.
POLICY=/usr/sbin/policy-rc.d
OURS=
if [ ! -e "$POLICY" ]; then
	printf '#!/bin/sh\n# temporary, from baton scripts/install-haproxy.sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
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

if ! { $SUDO apt-get update && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends haproxy; } >"$LOG" 2>&1; then
	echo "install-haproxy.sh: apt-get install haproxy failed:" >&2
	tail -n 20 "$LOG" >&2
	exit 1
fi

# The tests run their own haproxy: leave the system's unit stopped and
# disabled (only where systemd is running).
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	$SUDO systemctl disable --now haproxy >/dev/null 2>&1 || true
fi

HAPROXY=$(find_haproxy) || {
	echo "install-haproxy.sh: haproxy not found after apt-get install" >&2
	exit 1
}
echo "installed $("$HAPROXY" -v 2>/dev/null | head -n 1) (system service not started)"
