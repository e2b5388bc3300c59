#!/usr/bin/env bash
# baton.exe, the .msi and the Windows service, run under Wine (Debian's
# Wine 8, 64-bit) in a private Wine prefix under a temporary folder:
#   - baton.exe version, check-config good and bad (exit 2, key and line);
#   - a foreground pair on a file lease: one active, the other forwarding to
#     it, Ctrl-C (SIGINT, which Wine turns into a console Ctrl-C event) hands
#     the lease over, each exits 0;
#   - the .msi installed with msiexec /qn (the two sc.exe steps Wine's sc.exe
#     lacks are the only ones tolerated, and the test says so), the service
#     started, serving, reloaded by paramchange, stopped (lease released,
#     exit 0), a configuration error as service exit code 2;
#   - baton service install|remove for a named service with its own folder;
#   - the .msi uninstalled.
# Wine has no bcryptprimitives.dll, which Go's runtime needs: the test puts
# a stand-in built from packaging/test/wine/bcryptprimitives.c (MinGW-w64)
# into the prefix; it is never shipped. What only a real Windows shows
# (restart-on-failure, folder ACLs, pre-shutdown, the event log) is listed
# in README.md ("What is tested under Wine, and what only Windows shows").
#
#   packaging/test/test-windows.sh        (make test-windows runs it; root or sudo for apt)
#
# Every process it starts is stopped by its PID, the prefix's Wine
# processes by `wineserver -k`, and the folder is removed, also on failure.
# Every wait is bounded.
set -uo pipefail
cd "$(dirname "$0")/../.."
source packaging/test/lib.sh
GO=${GO:-go}

command -v wine >/dev/null 2>&1 && command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || sh scripts/install-wine.sh
packaging/scripts/install-deps.sh windows >&2
command -v curl >/dev/null 2>&1 || sh scripts/apt-install.sh curl
command -v python3 >/dev/null 2>&1 || sh scripts/apt-install.sh python3

tmp=$(mktemp -d -t baton-wine.XXXXXX)
export WINEPREFIX=$tmp/prefix WINEARCH=win64 WINEDEBUG=-all
export WINEDLLOVERRIDES="mscoree,mshtml=" # no Mono or Gecko installer prompts
unset DISPLAY WAYLAND_DISPLAY             # no windows: wine's programs run headless

pids=() # what this script started in the background, until it was waited for
forget() {
	local p keep=()
	for p in "${pids[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
	pids=("${keep[@]}")
}
cleanup() {
	local p
	for p in "${pids[@]}"; do
		[[ $(ps -o ppid= -p "$p" 2>/dev/null | tr -d ' ') == "$$" ]] || continue # ended (its PID may be another's now)
		kill -TERM "$p" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
	done
	# Every Wine process of this prefix (services.exe, a baton service).
	[[ -d $WINEPREFIX ]] && timeout 30 wineserver -k 2>/dev/null
	timeout 30 wineserver -w 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# w CMD...: wine with a time limit (60 s unless T= says otherwise); its
# output and errors together, without CRs. Through a file, not a pipe:
# Wine's own processes (wineserver, services.exe) may inherit the output
# and outlive the command, and a pipe would wait for them.
w() {
	local rc
	timeout "${T:-60}" wine "$@" >"$tmp/w.out" 2>&1 </dev/null
	rc=$?
	tr -d '\r' <"$tmp/w.out"
	return $rc
}
# winpath PATH: a Linux path as Wine sees it (drive Z: is /).
winpath() { printf 'Z:%s' "${1//\//\\}"; }
# poll SECONDS CMD...: run CMD every 0.2 s until it succeeds; fails after SECONDS.
poll() {
	local end=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		((SECONDS < end)) || return 1
		sleep 0.2
	done
}
# exits DESC RC WANT OUTPUT: a command's exit code, and its output if wrong.
exits() { if [[ $2 == "$3" ]]; then ok "$1"; else bad "$1" "exit $2; $4"; fi; }
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1"; }
is() { [[ $(code "$1") == "$2" ]]; }
# state NAME: the service's state as sc.exe query names it (RUNNING, STOPPED, ...).
state() { w sc query "$1" 2>/dev/null | awk '$1 == "STATE" { print $4 }'; }
state_is() { [[ $(state "$1") == "$2" ]]; }
# gone PID: the process has ended (and was reaped).
gone() { ! kill -0 "$1" 2>/dev/null; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
# ports N: N distinct free loopback ports.
ports() {
	python3 -c 'import socket,sys
ss=[socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])' "$1"
}

# config FILE NAME HTTP PROBE ADMIN [LEASE]: a node's configuration with
# fast timings; without LEASE the file lease takes its default place.
config() {
	local lease=""
	[[ -z ${6:-} ]] || lease="[lease.file]
path = '$6'"
	cat >"$1" <<EOF
node_name = "$2"
[listen]
http = "127.0.0.1:$3"
[backend]
url = "http://127.0.0.1:$app"
[probe]
listen = "127.0.0.1:$4"
lb_interval = "1s"
[admin]
listen = "127.0.0.1:$5"
[lease]
backend = "file"
duration = "15s"
renew_interval = "1s"
renew_deadline = "5s"
retry_interval = "500ms"
candidacy_backoff = "2s"
$lease
[azure]
scheduled_events = false
[[health.check]]
name = "app"
type = "http"
url = "http://127.0.0.1:$app/healthz"
interval = "250ms"
timeout = "200ms"
[drain]
timeout = "3s"
exit_delay = "500ms"
[log]
level = "info"
EOF
}

section "build"
t0=$(date +%s.%N)
msi=$(OUT=$tmp/pkg packaging/scripts/build-msi.sh 2>"$tmp/build.log") || { cat "$tmp/build.log"; exit 1; }
exe=$tmp/pkg/msi/baton.exe # the baton.exe inside the .msi
CGO_ENABLED=0 $GO build -o "$tmp/demoapp" ./demo/app || exit 1
x86_64-w64-mingw32-gcc -shared -O2 -s -Wall -Werror -o "$tmp/bcryptprimitives.dll" \
	packaging/test/wine/bcryptprimitives.c -ladvapi32 || exit 1
CGO_ENABLED=0 GOOS=windows GOARCH=amd64 $GO build -o "$tmp/svcctl.exe" ./packaging/test/wine/svcctl || exit 1
printf '  baton.exe, %s, the stand-in bcryptprimitives.dll and svcctl.exe in %ss\n' "$(basename "$msi")" "$(elapsed "$t0")"

section "Wine prefix"
t0=$(date +%s.%N)
T=180 w wineboot -i >/dev/null
# Then one wineserver (and so one services.exe) for the rest of the test,
# kept up while no Wine program runs: Wine starts the automatic services
# each time services.exe starts.
timeout 30 wineserver -k
timeout 30 wineserver -w
timeout 30 wineserver -p </dev/null >/dev/null 2>&1
check "a 64-bit prefix ($(elapsed "$t0")s)" test -d "$WINEPREFIX/drive_c/windows/system32"
out=$(w "$(winpath "$exe")" version 2>&1)
contains "without bcryptprimitives.dll Go's runtime does not start (why the stand-in)" "$out" "bcryptprimitives.dll not found"
cp "$tmp/bcryptprimitives.dll" "$WINEPREFIX/drive_c/windows/system32/"
eval "$(packaging/scripts/version.sh)"

section "baton.exe"
read -r app ha pa aa hb pb ab h2 p2 a2 hs ps as <<<"$(ports 13)"
"$tmp/demoapp" -name app -listen "127.0.0.1:$app" >"$tmp/demoapp.log" 2>&1 &
pids+=($!)
poll 10 is "http://127.0.0.1:$app/healthz" 200 || bad "the demo app answers"
out=$(w "$(winpath "$exe")" version 2>&1)
eq "version" "$out" "$(printf 'baton %s (%s, windows/amd64)' "$VERSION" "$($GO env GOVERSION)")"
mkdir -p "$tmp/pair"
config "$tmp/pair/a.toml" a "$ha" "$pa" "$aa" "$(winpath "$tmp/pair/lease")"
config "$tmp/pair/b.toml" b "$hb" "$pb" "$ab" "$(winpath "$tmp/pair/lease")"
check "check-config of a good file: exit 0" w "$(winpath "$exe")" check-config -config "$(winpath "$tmp/pair/a.toml")"
printf 'node_name = "a"\n[lease]\nbackend = "file"\nduration = "nope"\n' >"$tmp/bad.toml"
out=$(w "$(winpath "$exe")" check-config -config "$(winpath "$tmp/bad.toml")" 2>&1)
eq "check-config of a bad file: exit 2" "$?" 2
contains "  and it names the file, line and key" "$out" "$(winpath "$tmp/bad.toml"):4: lease.duration: invalid duration \"nope\""
out=$(w "$(winpath "$exe")" run -service -config "$(winpath "$tmp/pair/a.toml")" 2>&1)
eq "run -service outside the service manager: exit 1" "$?" 1
contains "  and it says why" "$out" "service control dispatcher"

section "a foreground pair on a file lease"
wine "$(winpath "$exe")" run -config "$(winpath "$tmp/pair/a.toml")" >"$tmp/pair/a.log" 2>&1 &
pa_pid=$!
pids+=("$pa_pid")
if poll 30 is "http://127.0.0.1:$pa/probe" 200; then ok "a is active (probe 200)"; else bad "a is active" "$(tail -5 "$tmp/pair/a.log")"; fi
wine "$(winpath "$exe")" run -config "$(winpath "$tmp/pair/b.toml")" >"$tmp/pair/b.log" 2>&1 &
pb_pid=$!
pids+=("$pb_pid")
poll 30 is "http://127.0.0.1:$hb/" 200 # b listens and knows the active
eq "b is standby (probe 503)" "$(code "http://127.0.0.1:$pb/probe")" 503
eq "b forwards to the active: 200 from the app" "$(code "http://127.0.0.1:$hb/")" 200
eq "a serves: 200 from the app" "$(code "http://127.0.0.1:$ha/")" 200
t0=$(date +%s.%N)
kill -INT "$pa_pid" # Wine delivers SIGINT to a console program as Ctrl-C
if poll 15 is "http://127.0.0.1:$pb/probe" 200; then
	ok "Ctrl-C on a: b is active after $(elapsed "$t0")s"
else
	bad "Ctrl-C on a: b becomes active" "$(tail -5 "$tmp/pair/b.log")"
fi
if poll 15 gone "$pa_pid"; then wait "$pa_pid"; eq "a exited 0" "$?" 0; forget "$pa_pid"; else bad "a exits after Ctrl-C"; fi
contains "a's log: stopped by Ctrl-C" "$(cat "$tmp/pair/a.log")" '"msg":"stopping","node":"a","reason":"interrupt signal received"'
contains "a's log: lease released" "$(cat "$tmp/pair/a.log")" '"lease released'
eq "b serves: 200 from the app" "$(code "http://127.0.0.1:$hb/")" 200
kill -INT "$pb_pid"
if poll 15 gone "$pb_pid"; then wait "$pb_pid"; eq "b exited 0 after Ctrl-C" "$?" 0; forget "$pb_pid"; else bad "b exits after Ctrl-C"; fi

section "msi install"
data=$WINEPREFIX/drive_c/ProgramData/baton
prog="$WINEPREFIX/drive_c/Program Files/baton"
# The service's configuration before the install: CreateConfig keeps an
# existing baton.toml, and Wine starts automatic services whenever its
# services.exe starts; either way this one listens on free loopback ports.
mkdir -p "$data"
config "$tmp/service.toml" svc "$hs" "$ps" "$as"
cp "$tmp/service.toml" "$data/baton.toml"
# Wine's sc.exe has no `config` and no `failureflag` command (exit 1; the
# shipped .msi fails the install on them, error 1627). Only these two
# custom actions are made non-fatal, in a copy of the package.
tolerated="ServiceImagePath ServiceRecoveryOnError"
cp "$msi" "$tmp/wine.msi"
for ca in $tolerated; do
	msibuild "$tmp/wine.msi" -q "UPDATE CustomAction SET Type = 3186 WHERE Action = '$ca'" ||
		bad "make $ca non-fatal in the copy"
done
echo "  tolerated under Wine: ServiceImagePath (sc config baton binPath= ...) and"
echo "  ServiceRecoveryOnError (sc failureflag baton 1): Wine's sc.exe has neither"
t0=$(date +%s.%N)
T=180 w msiexec /i "$(winpath "$tmp/wine.msi")" /qn /l*v "$(winpath "$tmp/install.log")" >/dev/null 2>&1
rc=$?
eq "msiexec /i /qn: exit 0 ($(elapsed "$t0")s)" "$rc" 0
eq "baton.exe is the one built" "$(sha256sum <"$prog/baton.exe")" "$(sha256sum <"$exe")"
check "copyright.txt installed" test -s "$prog/copyright.txt"
check "the example installed, with CRLF" grep -q $'\r$' "$data/baton.example.toml"
eq "the existing baton.toml kept" "$(sha256sum <"$data/baton.toml")" "$(sha256sum <"$tmp/service.toml")"
reg=$(w reg query 'HKLM\System\CurrentControlSet\Services\baton' 2>&1)
contains "service baton: automatic start" "$reg" "Start    REG_DWORD    0x2"
contains "  as LocalService" "$reg" 'ObjectName    REG_SZ    NT AUTHORITY\LocalService'
image=$(awk '$1 == "ImagePath" { sub(/^ *ImagePath +REG_[A-Z_]+ +/, ""); print }' <<<"$reg")
contains "  its command line says -service" "$image" 'baton.exe run -service -config "C:\ProgramData\baton\baton.toml"'
echo "  ImagePath as Wine's installer wrote it (ServiceImagePath, which quotes it, did not run): $image"
for ca in $tolerated; do
	w sc query baton >/dev/null # the service exists: a failure below is the command's
	case $ca in
	ServiceImagePath) out=$(w sc config baton binPath= "\"C:\\Program Files\\baton\\baton.exe\" run" 2>&1) ;;
	ServiceRecoveryOnError) out=$(w sc failureflag baton 1 2>&1) ;;
	esac
	rc=$?
	if ((rc != 0)); then ok "$ca is tolerated because this Wine's sc.exe fails it (exit $rc)"; else
		bad "$ca: this Wine's sc.exe now succeeds: tolerate it no more" "$out"; fi
done
check "event source registered" w reg query 'HKLM\System\CurrentControlSet\Services\EventLog\Application\baton'
eq "not started by the install" "$(state baton)" STOPPED

section "service"
t0=$(date +%s.%N)
w net start baton >/dev/null 2>&1
if poll 30 state_is baton RUNNING && poll 15 is "http://127.0.0.1:$ps/probe" 200; then
	ok "net start baton: running and active in $(elapsed "$t0")s"
else
	bad "net start baton: running and active" "$(state baton); $(tail -5 "$data/baton.log" 2>&1)"
fi
eq "it serves: 200 from the app" "$(code "http://127.0.0.1:$hs/")" 200
check "its log is next to its configuration" grep -q '"msg":"node started"' "$data/baton.log"
check "its lease file is next to its configuration (the default)" test -s "$data/lease"
# paramchange: a changed health check interval is applied by a reload.
sed -i 's/^interval = "250ms"/interval = "300ms"/' "$data/baton.toml"
out=$(w "$(winpath "$tmp/svcctl.exe")" paramchange baton 2>&1)
if [[ $? -eq 0 ]] && poll 10 grep -q '"msg":"configuration reloaded"' "$data/baton.log"; then
	ok "paramchange reloads the configuration"
else
	bad "paramchange reloads the configuration" "$out"
fi
t0=$(date +%s.%N)
w net stop baton >/dev/null 2>&1
if poll 30 state_is baton STOPPED; then ok "net stop baton: stopped in $(elapsed "$t0")s"; else bad "net stop baton: stopped" "$(state baton)"; fi
query=$(w sc query baton 2>&1)
contains "  with exit code 0" "$query" "WIN32_EXIT_CODE    : 0  (0x0)"
log=$(cat "$data/baton.log")
contains "  its log: the reason is the service stop" "$log" '"msg":"stopping","node":"svc","reason":"service stop"'
contains "  its log: lease released" "$log" '"lease released'
contains "  its log: stopped" "$log" '"msg":"stopped"'
eq "  the probe is down" "$(code "http://127.0.0.1:$ps/probe")" 000

printf 'node_name = "svc"\n[lease]\nbackend = "file"\nduration = "nope"\n' >"$data/baton.toml"
w net start baton >/dev/null 2>&1
if poll 30 state_is baton STOPPED; then ok "a configuration error: the service stops"; else bad "a configuration error: the service stops" "$(state baton)"; fi
query=$(w sc query baton 2>&1)
contains "  with a service-specific exit code (1066)" "$query" "WIN32_EXIT_CODE    : 1066"
contains "  which is 2" "$query" "SERVICE_EXIT_CODE  : 2  (0x2)"
contains "  and its log names the line and the key" "$(cat "$data/baton.log")" 'C:\ProgramData\baton\baton.toml:4: lease.duration: invalid duration "nope"'
cp "$tmp/service.toml" "$data/baton.toml"

section "baton service install|remove"
mkdir -p "$tmp/two"
config "$tmp/two/two.toml" two "$h2" "$p2" "$a2"
out=$(w "C:\\Program Files\\baton\\baton.exe" service install -name two -config "$(winpath "$tmp/two/two.toml")" 2>&1)
exits "service install -name two: exit 0" "$?" 0 "$out"
contains "  the one setting Wine lacks is a warning (failureflag, as for the .msi)" "$out" \
	"warning: the service baton-two is restarted after a crash but not after an error exit"
reg=$(w reg query 'HKLM\System\CurrentControlSet\Services\baton-two' 2>&1)
contains "  its command line is quoted and says -service" "$reg" \
	"\"C:\\Program Files\\baton\\baton.exe\" run -service -config $(winpath "$tmp/two/two.toml")"
w net start baton-two >/dev/null 2>&1
if poll 30 state_is baton-two RUNNING && poll 15 is "http://127.0.0.1:$p2/probe" 200; then
	ok "net start baton-two: running and active"
else
	bad "net start baton-two: running and active" "$(state baton-two); $(tail -5 "$tmp/two/two.log" 2>&1)"
fi
check "  its log is next to its configuration (two.log)" grep -q '"msg":"node started"' "$tmp/two/two.log"
check "  and its lease file and lease ID" test -s "$tmp/two/lease" -a -n "$(ls "$tmp/two"/*.leaseid 2>/dev/null)"
out=$(w "C:\\Program Files\\baton\\baton.exe" service remove -name two 2>&1)
exits "service remove -name two: exit 0" "$?" 0 "$out"
contains "  it stopped it with the reason service stop" "$(cat "$tmp/two/two.log")" '"reason":"service stop"'
contains "  and released the lease" "$(cat "$tmp/two/two.log")" '"lease released'
refute "  and removed it" w reg query 'HKLM\System\CurrentControlSet\Services\baton-two'

section "msi uninstall"
T=180 w msiexec /x "$(winpath "$tmp/wine.msi")" /qn /l*v "$(winpath "$tmp/uninstall.log")" >/dev/null 2>&1
eq "msiexec /x /qn: exit 0" "$?" 0
refute "the service is removed" w reg query 'HKLM\System\CurrentControlSet\Services\baton'
refute "baton.exe is removed" test -e "$prog/baton.exe"
refute "the example is removed" test -e "$data/baton.example.toml"
check "baton.toml and the log stay" test -s "$data/baton.toml" -a -s "$data/baton.log"
refute "the event source is removed" w reg query 'HKLM\System\CurrentControlSet\Services\EventLog\Application\baton'

finish
