#!/bin/sh
# install-wine.sh: install what `make test-windows` needs from the Debian
# archive: Wine (64-bit) to run baton.exe, its .msi and its Windows service,
# and the MinGW-w64 C compiler that builds the test-only stand-in for
# bcryptprimitives.dll (packaging/test/wine/). Pinned to the release series
# the tests are proven with (Debian 12's Wine 8); another version is used
# but named in a warning. Idempotent: does nothing when wine and
# x86_64-w64-mingw32-gcc are already installed. Installing needs root (or
# sudo). Prints one line.
set -eu

SERIES=8.

wine_version() {
	WINEDEBUG=-all wine --version 2>/dev/null | sed -n 's/^wine-\([0-9.]*\).*/\1/p' | head -n 1
}

check_series() {
	v=$(wine_version)
	case "$v" in
	"$SERIES"*) ;;
	*) echo "install-wine.sh: warning: Wine $v, the tests are proven with Wine ${SERIES}x" >&2 ;;
	esac
}

have() { command -v wine >/dev/null 2>&1 && command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1; }

if have; then
	echo "wine already installed: $(wine_version); mingw-w64 gcc $(x86_64-w64-mingw32-gcc -dumpversion)"
	check_series
	exit 0
fi

# wine (the /usr/bin/wine* commands) on wine64 alone: no i386 architecture,
# no 32-bit Wine (baton.exe is x64; run it with WINEDEBUG=-all, or the
# wine command suggests wine32 each time). gcc-mingw-w64-x86-64-win32:
# the C compiler without the C++ and posix thread runtimes.
sh "$(dirname "$0")/apt-install.sh" wine wine64 gcc-mingw-w64-x86-64-win32

have || {
	echo "install-wine.sh: wine or x86_64-w64-mingw32-gcc not found after apt-get install" >&2
	exit 1
}
echo "installed wine $(wine_version) and mingw-w64 gcc $(x86_64-w64-mingw32-gcc -dumpversion)"
check_series
