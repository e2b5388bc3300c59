#!/usr/bin/env bash
# Prints the package versions derived from the build's version string
# (VERSION, default: git describe --tags --always --dirty), as shell
# assignments for eval:
#
#   tag v1.2.3                 deb 1.2.3                 msi 1.2.3
#   v1.2.3-4-gabc1234[-dirty]  deb 1.2.3+4.gabc1234[.dirty]  msi 1.2.3
#   abc1234[-dirty] (no tag)   deb 0.0.0+gitN.abc1234[.dirty]  msi 0.0.N
#
# (N: the number of commits, so untagged builds still increase.)
# DEB_VERSION and MSI_VERSION set in the environment are kept. The .msi
# allows same-version upgrades, so builds after one tag replace each other.
set -euo pipefail
cd "$(dirname "$0")/../.."

v=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
dirty=""
if [[ $v == *-dirty ]]; then
	dirty=.dirty
	v=${v%-dirty}
fi
if [[ $v =~ ^v?([0-9]+)\.([0-9]+)\.([0-9]+)([-+~.][0-9A-Za-z.+~-]*)?$ ]]; then
	maj=${BASH_REMATCH[1]} min=${BASH_REMATCH[2]} pat=${BASH_REMATCH[3]} rest=${BASH_REMATCH[4]}
	deb="$maj.$min.$pat"
	if [[ $rest =~ ^-([0-9]+)-(g[0-9a-f]+)$ ]]; then
		deb+="+${BASH_REMATCH[1]}.${BASH_REMATCH[2]}" # commits after the tag
	elif [[ -n $rest ]]; then
		deb+="~${rest#[-+~.]}" # a pre-release such as -rc1 sorts before the release
		deb=${deb//-/.}
	fi
	msi="$maj.$min.$pat"
else
	n=$(git rev-list --count HEAD 2>/dev/null || echo 0)
	h=$v
	[[ $h =~ ^[0-9a-f]{7,40}$ ]] || h=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
	deb="0.0.0+git$n.$h"
	msi="0.0.$n"
fi
deb+=$dirty

# DEB_VERSION / MSI_VERSION in the environment win (the upgrade tests use them).
printf 'VERSION=%q\nDEB_VERSION=%q\nMSI_VERSION=%q\n' "${VERSION:-$v${dirty:+-dirty}}" "${DEB_VERSION:-$deb}" "${MSI_VERSION:-$msi}"
