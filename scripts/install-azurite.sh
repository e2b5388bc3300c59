#!/bin/sh
# install-azurite.sh: install the pinned Azurite (the Azure Storage emulator)
# into <repo>/.tools/azurite for the azblob lease tests. Idempotent: does
# nothing when the pinned version is already there. Works from any cwd.
set -eu

VERSION=3.37.0
ROOT=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
PREFIX="$ROOT/.tools/azurite"
PKG_JSON="$PREFIX/node_modules/azurite/package.json"
BIN="$PREFIX/node_modules/.bin/azurite-blob"

installed_version() {
	[ -f "$PKG_JSON" ] || return 0
	sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$PKG_JSON" | head -n 1
}

if [ "$(installed_version)" = "$VERSION" ] && [ -x "$BIN" ]; then
	echo "azurite $VERSION already installed in $PREFIX"
	exit 0
fi

command -v npm >/dev/null 2>&1 || {
	echo "install-azurite.sh: npm not found: install Node.js (>= 18) and npm first" >&2
	exit 1
}

mkdir -p "$PREFIX"
npm install --prefix "$PREFIX" --no-save --no-audit --no-fund --loglevel=error \
	"azurite@$VERSION" >"$PREFIX/npm-install.log" 2>&1 || {
	echo "install-azurite.sh: npm install azurite@$VERSION failed; see $PREFIX/npm-install.log" >&2
	tail -n 20 "$PREFIX/npm-install.log" >&2
	exit 1
}

if [ "$(installed_version)" != "$VERSION" ] || [ ! -x "$BIN" ]; then
	echo "install-azurite.sh: azurite $VERSION not found in $PREFIX after npm install" >&2
	exit 1
fi
echo "installed azurite $VERSION into $PREFIX"
