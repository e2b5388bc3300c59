#!/bin/sh
# install-haproxy.sh: install HAProxy from the Debian archive for the
# load-balancer failover tests (e2e/), which run their own haproxy in the
# foreground on loopback. Idempotent: does nothing when haproxy is already
# installed (apt-get update runs only when it is missing). It never starts
# the system service (scripts/apt-install.sh). Installing needs root (or
# sudo). Prints one line.
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

sh "$(dirname "$0")/apt-install.sh" haproxy

HAPROXY=$(find_haproxy) || {
	echo "install-haproxy.sh: haproxy not found after apt-get install" >&2
	exit 1
}
echo "installed $("$HAPROXY" -v 2>/dev/null | head -n 1) (system service not started)"
