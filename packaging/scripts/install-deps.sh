#!/usr/bin/env bash
# Installs the Debian packages that `make deb`, `make msi`, `make test-packages`,
# `make test-systemd` and `make test-windows` (Wine: scripts/install-wine.sh)
# need, idempotently: a tool already on PATH is not reinstalled, and
# `apt-get update` runs only when something is missing.
#
#   packaging/scripts/install-deps.sh [deb|msi|test|systemd|windows]...
set -euo pipefail

declare -A pkg_of=(
	[wixl]=wixl
	[msiinfo]=msitools
	[msiextract]=msitools
	[msibuild]=msitools
	[osslsigncode]=osslsigncode
	[lintian]=lintian
	[systemd-analyze]=systemd
	[debootstrap]=debootstrap
	[systemd-nspawn]=systemd-container
	[dpkg-deb]=dpkg
)
declare -A tools_for=(
	[deb]=""
	[msi]="wixl"
	[test]="lintian systemd-analyze dpkg-deb msiinfo msiextract osslsigncode"
	[systemd]="debootstrap systemd-nspawn"
	[windows]="wixl msiinfo msibuild"
)

want=()
for set in "${@:-deb msi test}"; do
	for s in $set; do
		[[ -v "tools_for[$s]" ]] || { echo "install-deps: unknown set $s" >&2; exit 2; }
		for t in ${tools_for[$s]}; do
			command -v "$t" >/dev/null 2>&1 || want+=("${pkg_of[$t]}")
		done
	done
done
# debootstrap checks the Debian archive's signatures with this keyring.
for set in "$@"; do
	if [[ $set == systemd && ! -e /usr/share/keyrings/debian-archive-keyring.gpg ]]; then
		want+=(debian-archive-keyring)
	fi
done
[[ ${#want[@]} -eq 0 ]] && exit 0

mapfile -t want < <(printf '%s\n' "${want[@]}" | sort -u)
echo "install-deps: installing ${want[*]}" >&2
sudo=""
[[ $(id -u) -eq 0 ]] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
