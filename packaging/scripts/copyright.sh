#!/usr/bin/env bash
# Writes /usr/share/doc/baton/copyright (or the .msi's copyright.txt) for a
# built binary: baton itself (Apache-2.0, LICENSE) and every Go module
# linked into it (from `go version -m`), with the license found in that
# module's LICENSE file. For Windows it ends with the full text of baton's
# license, which Debian systems have in /usr/share/common-licenses.
#
#   packaging/scripts/copyright.sh BINARY [windows]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$1
target=${2:-debian}
GO=${GO:-go}

declare -A dir
while IFS=$'\t' read -r path _ d; do
	dir[$path]=$d
done < <($GO list -m -f '{{.Path}}	{{.Version}}	{{.Dir}}' all)

license_of() {
	local f="" c
	for c in "$1"/LICENSE* "$1"/LICENCE* "$1"/COPYING*; do
		if [[ -f $c ]]; then f=$c; break; fi
	done
	[[ -n $f ]] || { echo "unknown (no license file found)"; return; }
	if grep -q 'Apache License' "$f" && grep -q 'Version 2.0' "$f"; then echo Apache-2.0
	elif grep -q 'Mozilla Public License' "$f"; then echo MPL-2.0
	elif grep -q 'CC0 1.0 Universal' "$f"; then echo CC0-1.0
	elif grep -q 'Permission is hereby granted, free of charge' "$f"; then echo MIT
	elif grep -q 'Permission to use, copy, modify, and/or distribute' "$f"; then echo ISC
	elif grep -q 'Redistribution and use in source and binary forms' "$f"; then
		if grep -q 'Neither the name' "$f"; then echo BSD-3-Clause; else echo BSD-2-Clause; fi
	else echo "see $(basename "$f") in the module"
	fi
}

first=$(git log --reverse --format=%cd --date=format:%Y 2>/dev/null | sed -n 1p || true)
last=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}" +%Y)
years=$last
[[ -z $first || $first == "$last" ]] || years="$first-$last"

cat <<HEAD
baton: an active/standby front door for VMs.
Source: https://github.com/batonproxy/baton

Copyright $years the baton authors.
License: Apache-2.0 (the Apache License, Version 2.0; LICENSE in the
source repository).

The baton binary is statically linked with the following Go modules, each
under its own license (the full texts are in the modules' source, at the
versions listed):

HEAD
$GO version -m "$bin" | awk '$1 == "dep" { print $2, $3 }' | while read -r path ver; do
	d=${dir[$path]:-}
	if [[ -n $d ]]; then lic=$(license_of "$d"); else lic="unknown (module not in this build's module graph)"; fi
	printf '  %s %s: %s\n' "$path" "$ver" "$lic"
done
printf '\nThe Go standard library and runtime (%s): BSD-3-Clause.\n' "$($GO env GOVERSION)"
if [[ $target == windows ]]; then
	printf '\nThe full texts of the other licenses named above are in the modules\x27\nsource. The Apache License, Version 2.0, under which baton and the\nmodules marked Apache-2.0 are distributed, follows.\n'
	cat LICENSE
else
	cat <<'TAIL'

On Debian systems the complete texts of the Apache License 2.0, the
Mozilla Public License 2.0 and CC0 1.0 are in
/usr/share/common-licenses/Apache-2.0, /usr/share/common-licenses/MPL-2.0
and /usr/share/common-licenses/CC0-1.0.
TAIL
fi
