#!/usr/bin/env bash
# The real systemd test: a Debian 12 root made with debootstrap (from
# deb.debian.org, cached in .tools/systemd-test/debian12), booted with
# systemd-nspawn on a private network; inside it the .deb is installed and
# baton driven through systemctl (packaging/test/systemd/in-container.sh).
#
# Needs root. --register=no --keep-unit: this machine has no systemd as
# PID 1 (no machined, no unit to register the container in).
#
#   DEB=bin/pkg/baton_..._amd64.deb packaging/test/test-systemd.sh
#   (make test-systemd builds the .deb and bin/demoapp first)
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD

if [[ $(id -u) -ne 0 ]]; then
	echo "test-systemd: needs root (debootstrap, systemd-nspawn)" >&2
	exit 2
fi
packaging/scripts/install-deps.sh systemd
eval "$(packaging/scripts/version.sh)"
DEB=${DEB:-bin/pkg/baton_${DEB_VERSION}-1_amd64.deb}
[[ -f $DEB ]] || { echo "test-systemd: $DEB missing (make deb)" >&2; exit 2; }
[[ -x bin/demoapp ]] || { echo "test-systemd: bin/demoapp missing (make build)" >&2; exit 2; }

cache=.tools/systemd-test
mkdir -p "$cache"
if [[ ! -e $cache/debian12.complete ]]; then
	echo "test-systemd: debootstrap of Debian 12 into $cache/debian12 (once, about a minute)"
	rm -rf "$cache/debian12"
	t0=$(date +%s)
	debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,adduser,curl,ca-certificates \
		bookworm "$cache/debian12" http://deb.debian.org/debian >"$cache/debootstrap.log" 2>&1 ||
		{ tail -20 "$cache/debootstrap.log"; exit 1; }
	touch "$cache/debian12.complete"
	echo "test-systemd: debootstrap took $(($(date +%s) - t0))s"
fi

run=$(mktemp -d "$repo/$cache/run.XXXXXX")
cleanup() { rm -rf "$run"; }
trap cleanup EXIT
root=$run/root
results=$run/results
mkdir -p "$results"

t0=$(date +%s.%N)
cp -a "$cache/debian12" "$root"
install -m 0644 "$DEB" "$root/root/baton.deb"
install -m 0755 bin/demoapp "$root/usr/local/bin/demoapp"
install -m 0644 packaging/test/systemd/baton.toml "$root/root/baton.toml"
install -m 0755 packaging/test/systemd/in-container.sh "$root/root/in-container.sh"
install -m 0644 packaging/test/systemd/demoapp.service packaging/test/systemd/baton-test.service \
	"$root/etc/systemd/system/"
ln -sf /etc/systemd/system/baton-test.service "$root/etc/systemd/system/multi-user.target.wants/baton-test.service"
# No login prompt on the console: the test's output is the console.
ln -sf /dev/null "$root/etc/systemd/system/console-getty.service"

echo "test-systemd: booting $(basename "$DEB") in Debian 12 under systemd-nspawn"
rc=0
timeout 600 systemd-nspawn --quiet --register=no --keep-unit --boot --private-network \
	--directory="$root" --bind="$results:/results" >"$run/console.log" 2>&1 || rc=$?
t1=$(date +%s.%N)

cat "$results/report" 2>/dev/null || { echo "test-systemd: no report; console:"; tail -50 "$run/console.log"; }
printf '\ntest-systemd: boot, test and poweroff took %.0fs (nspawn exit %d)\n' "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$rc"
outcome=$(cat "$results/outcome" 2>/dev/null || echo none)
if [[ $outcome != PASS ]]; then
	mkdir -p bin
	cp "$run/console.log" bin/test-systemd-console.log
	cp "$results/journal.txt" bin/test-systemd-journal.txt 2>/dev/null || true
	echo "test-systemd: $outcome; console and journal in bin/test-systemd-*.txt/log" >&2
	exit 1
fi
