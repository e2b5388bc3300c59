#!/bin/sh
# install-promtool.sh: install promtool (Debian's prometheus package) for the
# tests of deploy/monitoring, which run `promtool check rules` and `promtool
# test rules` on baton's alert rules and dashboard queries. Pinned to the
# release series the rules are tested with (Debian 12's 2.42); another
# version is used but named in a warning. Idempotent: does nothing when
# promtool is already installed. It never starts the Prometheus service
# (scripts/apt-install.sh). Installing needs root (or sudo). Prints one line.
set -eu

SERIES=2.42

promtool_version() {
	promtool --version 2>/dev/null | sed -n 's/^promtool, version \([0-9.]*\).*/\1/p' | head -n 1
}

check_series() {
	v=$(promtool_version)
	case "$v" in
	"$SERIES".*) ;;
	*) echo "install-promtool.sh: warning: promtool $v, the rules are tested with $SERIES.x" >&2 ;;
	esac
}

if command -v promtool >/dev/null 2>&1; then
	echo "promtool already installed: $(promtool_version)"
	check_series
	exit 0
fi

sh "$(dirname "$0")/apt-install.sh" prometheus

command -v promtool >/dev/null 2>&1 || {
	echo "install-promtool.sh: promtool not found after apt-get install prometheus" >&2
	exit 1
}
echo "installed promtool $(promtool_version) (Prometheus service not started)"
check_series
