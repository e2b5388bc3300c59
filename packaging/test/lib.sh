# Helpers for the package tests (sourced). Every check prints one line;
# the script exits non-zero at the end if any failed (set -e is not used, so
# one failure does not hide the next).
set -uo pipefail

PASS=0
FAIL=0

ok() { PASS=$((PASS + 1)); printf '  ok    %s\n' "$1"; }
bad() {
	FAIL=$((FAIL + 1))
	printf '  FAIL  %s\n' "$1"
	[[ -z ${2:-} ]] || printf '%s\n' "$2" | sed 's/^/          /'
}

# eq DESC GOT WANT
eq() {
	if [[ $2 == "$3" ]]; then ok "$1"; else bad "$1" "got:  $2
want: $3"; fi
}

# check DESC CMD...: the command must succeed.
check() {
	local desc=$1 out
	shift
	if out=$("$@" 2>&1); then ok "$desc"; else bad "$desc" "$out"; fi
}

# refute DESC CMD...: the command must fail.
refute() {
	local desc=$1 out
	shift
	if out=$("$@" 2>&1); then bad "$desc" "unexpectedly succeeded: $out"; else ok "$desc"; fi
}

# contains DESC HAYSTACK NEEDLE
contains() {
	if [[ $2 == *"$3"* ]]; then ok "$1"; else bad "$1" "missing: $3
in:      $2"; fi
}

section() { printf '\n== %s\n' "$1"; }

finish() {
	printf '\n%d passed, %d failed\n' "$PASS" "$FAIL"
	[[ $FAIL -eq 0 ]]
}
