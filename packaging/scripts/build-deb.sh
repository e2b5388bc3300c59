#!/usr/bin/env bash
# Builds bin/pkg/baton_<version>-1_<arch>.deb with nfpm (tools/go.mod):
# a static binary (CGO_ENABLED=0), the systemd unit, the config as a
# conffile, the man page. Reproducible: every timestamp is
# SOURCE_DATE_EPOCH (default: the time of the last commit).
#
#   VERSION=v1.2.3 ARCH=amd64 OUT=bin/pkg packaging/scripts/build-deb.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

GO=${GO:-go}
export ARCH=${ARCH:-amd64}
OUT=${OUT:-bin/pkg}
# The conffile's content (the upgrade tests ship a changed one).
export CONFIG_SRC=${CONFIG_SRC:-baton.example.toml}
# The project's address (the GitHub organisation's); a fork or a
# distributor sets its own.
export DEB_MAINTAINER=${DEB_MAINTAINER:-baton maintainers <maintainers@batonproxy.github.io>}
eval "$(packaging/scripts/version.sh)"
export DEB_VERSION
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}

STAGE=$(mktemp -d)
export STAGE
trap 'rm -rf "$STAGE"' EXIT

CGO_ENABLED=0 GOOS=linux GOARCH=$ARCH $GO build -trimpath \
	-ldflags "-s -w -X main.version=$VERSION" -o "$STAGE/baton" ./cmd/baton

date_rfc2822=$(date -u -d "@$SOURCE_DATE_EPOCH" -R)
date_man=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)
sed -e "s/^\.TH BATON 1 \"\" \"baton\"/.TH BATON 1 \"$date_man\" \"baton $DEB_VERSION\"/" \
	packaging/baton.1 | gzip -9n >"$STAGE/baton.1.gz"

{
	printf 'baton (%s-1) unstable; urgency=medium\n\n' "$DEB_VERSION"
	printf '  * Built from baton %s.\n\n' "$VERSION"
	printf ' -- %s  %s\n' "$DEB_MAINTAINER" "$date_rfc2822"
} | gzip -9n >"$STAGE/changelog.Debian.gz"

packaging/scripts/copyright.sh "$STAGE/baton" >"$STAGE/copyright"

mkdir -p "$OUT"
rm -f "$OUT/baton_${DEB_VERSION}-1_${ARCH}.deb"
$GO tool -modfile=tools/go.mod nfpm package --config packaging/deb/nfpm.yaml \
	--packager deb --target "$OUT/" >&2
echo "$OUT/baton_${DEB_VERSION}-1_${ARCH}.deb"
