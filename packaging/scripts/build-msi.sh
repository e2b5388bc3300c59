#!/usr/bin/env bash
# Builds bin/pkg/baton-<version>-x64.msi with wixl (msitools): baton.exe
# (CGO_ENABLED=0), the Windows example config, the license list. The inputs
# are kept in bin/pkg/msi/ for the package tests.
#
# Signing (Authenticode, exe and msi) when both are given, with osslsigncode:
#   SIGN_CERT=cert.pem SIGN_KEY=key.pem [SIGN_TIMESTAMP=http://tsa] packaging/scripts/build-msi.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD

GO=${GO:-go}
OUT=${OUT:-bin/pkg}
eval "$(packaging/scripts/version.sh)"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}

packaging/scripts/install-deps.sh msi

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT

CGO_ENABLED=0 GOOS=windows GOARCH=amd64 $GO build -trimpath \
	-ldflags "-s -w -X main.version=$VERSION" -o "$STAGE/baton.exe" ./cmd/baton
# CRLF for the Notepad of older Windows Server releases; TOML accepts it.
sed -f packaging/msi/windows-example.sed baton.example.toml | sed 's/$/\r/' >"$STAGE/baton.example.toml"
packaging/scripts/copyright.sh "$STAGE/baton.exe" windows | sed 's/$/\r/' >"$STAGE/copyright.txt"

sign() { # sign IN: Authenticode signature in place
	local args=(sign -certs "$SIGN_CERT" -key "$SIGN_KEY" -h sha256 -n baton
		-i https://github.com/batonproxy/baton -in "$1" -out "$1.signed")
	[[ -z ${SIGN_TIMESTAMP:-} ]] || args+=(-ts "$SIGN_TIMESTAMP")
	osslsigncode "${args[@]}" >/dev/null
	mv "$1.signed" "$1"
}
signing=false
if [[ -n ${SIGN_CERT:-} || -n ${SIGN_KEY:-} ]]; then
	[[ -n ${SIGN_CERT:-} && -n ${SIGN_KEY:-} ]] || { echo "build-msi: set both SIGN_CERT and SIGN_KEY" >&2; exit 2; }
	signing=true
	sign "$STAGE/baton.exe"
fi

# wixl resolves File sources relative to the working directory; warnings
# (an unsupported attribute is only a warning) are fatal.
(cd "$STAGE" && G_DEBUG=fatal-warnings wixl -a x64 -D Version="$MSI_VERSION" -D SourceDir=. \
	-o baton.msi "$repo/packaging/msi/baton.wxs")
if $signing; then sign "$STAGE/baton.msi"; fi

mkdir -p "$OUT/msi"
msi="$OUT/baton-${DEB_VERSION}-x64.msi"
cp "$STAGE/baton.msi" "$msi"
cp "$STAGE/baton.exe" "$STAGE/baton.example.toml" "$STAGE/copyright.txt" "$OUT/msi/"
printf 'MSI_VERSION=%s\nSIGNED=%s\n' "$MSI_VERSION" "$signing" >"$OUT/msi/build.env"
echo "$msi"
