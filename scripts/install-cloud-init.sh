#!/bin/sh
# install-cloud-init.sh: install Debian's cloud-init package for the tests of
# deploy/azure, which validate the VMs' cloud-init with `cloud-init schema
# --config-file`. Pinned to the release series of the VMs' image (Debian 12:
# 22.4), so the test checks against the schema the VMs will apply; another
# version is used but named in a warning. Idempotent: does nothing when
# cloud-init is already installed.
#
# cloud-init is a boot-time service: so that this machine never runs it at
# its next boot, a machine on which this script installed it gets
# /etc/cloud/cloud-init.disabled (cloud-init's own switch; `cloud-init
# schema` works regardless). Installing needs root (or sudo). Prints one line.
set -eu

SERIES=22.4

ci_version() {
	cloud-init --version 2>&1 | sed -n 's/.* \([0-9][0-9]*\.[0-9][0-9.]*\).*/\1/p' | head -n 1
}

check_series() {
	v=$(ci_version)
	case "$v" in
	"$SERIES".* | "$SERIES") ;;
	*) echo "install-cloud-init.sh: warning: cloud-init $v, the VMs' image (Debian 12) has $SERIES" >&2 ;;
	esac
}

if command -v cloud-init >/dev/null 2>&1; then
	echo "cloud-init already installed: $(ci_version)"
	check_series
	exit 0
fi

sh "$(dirname "$0")/apt-install.sh" cloud-init

command -v cloud-init >/dev/null 2>&1 || {
	echo "install-cloud-init.sh: cloud-init not found after apt-get install" >&2
	exit 1
}
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO mkdir -p /etc/cloud
$SUDO touch /etc/cloud/cloud-init.disabled
# apt-install.sh disables the unit named like the package; cloud-init has
# several.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	for u in cloud-init-local cloud-init cloud-config cloud-final; do
		$SUDO systemctl disable "$u.service" >/dev/null 2>&1 || true
	done
fi
echo "installed cloud-init $(ci_version) (disabled at boot: /etc/cloud/cloud-init.disabled)"
check_series
