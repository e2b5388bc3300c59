#!/bin/bash
# Runs inside the booted Debian 12 container (packaging/test/test-systemd.sh
# puts it there as /root/in-container.sh, started by baton-test.service).
# Installs the .deb and drives baton through systemd; writes its report to
# /results/report and the outcome (PASS or FAIL) to /results/outcome, then
# powers the container off.
set -uo pipefail
exec > >(tee /results/report) 2>&1

PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "  ok    $1"; }
bad() { FAIL=$((FAIL + 1)); echo "  FAIL  $1"; [[ -z ${2:-} ]] || echo "$2" | sed 's/^/          /'; }
eq() { if [[ $2 == "$3" ]]; then ok "$1"; else bad "$1" "got:  $2
want: $3"; fi; }
check() { local d=$1 out; shift; if out=$("$@" 2>&1); then ok "$d"; else bad "$d" "$out"; fi; }
section() { echo; echo "== $1"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2fs", b - a }'; }
prop() { systemctl show -P "$1" baton; }
probe() { curl -s -o /dev/null -m 2 -w '%{http_code}' http://127.0.0.1:8081/probe; }
# wait_for DESC SECONDS CMD...: poll CMD every 0.1s until it succeeds.
wait_for() {
	local desc=$1 limit=$2 t0
	shift 2
	t0=$(now)
	for ((i = 0; i < limit * 10; i++)); do
		if "$@" >/dev/null 2>&1; then ok "$desc (after $(since "$t0"))"; return 0; fi
		sleep 0.1
	done
	bad "$desc (not within ${limit}s)"
	return 1
}
probe_is() { [[ $(probe) == "$1" ]]; }
mainpid_alive() { local p; p=$(prop MainPID); [[ $p != 0 && -d /proc/$p ]]; }
log_has() { journalctl -u baton --no-pager -o cat --since "$1" | grep -qF "$2"; }

finish() {
	echo
	echo "$PASS passed, $FAIL failed"
	if [[ $FAIL -eq 0 ]]; then echo PASS >/results/outcome; else echo FAIL >/results/outcome; fi
	journalctl -u baton -u "baton@*" -u demoapp --no-pager -o short-monotonic >/results/journal.txt 2>&1
	systemctl poweroff --no-block
	exit 0
}
trap finish EXIT

section "boot"
state=$(systemctl is-system-running --wait)
eq "the container booted (systemd $(systemctl --version | sed -n '1s/systemd \([0-9]*\).*/\1/p'))" "$state" running

section "install the .deb under a running systemd"
out=$(dpkg -i /root/baton.deb 2>&1)
eq "dpkg -i" "$?" 0
[[ $out == *"not enabled"* ]] && ok "postinst says the service is not enabled yet" || bad "postinst message" "$out"
eq "the unit is known and disabled" "$(systemctl is-enabled baton 2>&1)" disabled
eq "and not started" "$(systemctl is-active baton 2>&1)" inactive

section "the shipped configuration (no storage account configured yet)"
t0=$(now)
out=$(runuser -u baton -- baton check-config 2>&1)
code=$?
echo "  check-config took $(since "$t0")"
eq "baton check-config: configuration error" "$code" 2
[[ $out == *"lease storage"* ]] && ok "it explains the lease storage problem" || bad "it explains the lease storage problem" "$out"
echo "$out" | grep 'lease storage' | sed 's/^/          /'

install -m 0640 -o root -g baton /root/baton.toml /etc/baton/baton.toml
check "the test config is valid for the service user" runuser -u baton -- baton check-config -offline
systemctl enable --now demoapp.service

section "start"
t0=$(now)
check "systemctl enable --now baton (returns once READY=1 arrived)" systemctl enable --now baton
echo "  start took $(since "$t0")"
eq "active (running)" "$(systemctl status baton --no-pager | grep -o 'Active: [a-z]* ([a-z]*)')" "Active: active (running)"
pid=$(prop MainPID)
eq "runs as baton" "$(stat -c %U "/proc/$pid")" baton
capamb=$(awk '/^CapAmb/ {print $2}' "/proc/$pid/status")
eq "with CAP_NET_BIND_SERVICE and nothing else (CapAmb)" "$capamb" 0000000000000400
eq "status text from sd_notify" "$(prop StatusText)" serving
check "port 80 is bound" curl -s -o /dev/null -m 2 http://127.0.0.1:80/
wait_for "the probe answers 200 (lease acquired, app healthy)" 30 probe_is 200
body=$(curl -s -m 2 http://127.0.0.1:80/)
[[ $body == instance=app* ]] && ok "requests reach the app through baton" || bad "request through baton" "$body"
check "/var/lib/baton belongs to baton" test "$(stat -c %U /var/lib/baton)" = baton

section "reload"
t0=$(date '+%Y-%m-%d %H:%M:%S')
check "systemctl reload baton" systemctl reload baton
wait_for "the reload is logged" 10 log_has "$t0" "configuration reloaded"
eq "same process" "$(prop MainPID)" "$pid"
eq "still active (running)" "$(prop ActiveState)/$(prop SubState)" active/running
eq "probe still 200" "$(probe)" 200

section "stop"
t0=$(now)
systemctl stop --no-block baton
wait_for "the probe turns 503 at once" 5 probe_is 503
if mainpid_alive; then ok "while the process still runs (listeners open for drain.exit_delay)"; else bad "the process was gone before the probe was seen 503"; fi
eq "systemd sees it deactivating (STOPPING=1)" "$(prop ActiveState)" deactivating
wait_for "the service stops" 30 bash -c '[[ $(systemctl is-active baton) == inactive ]]'
echo "  stop took $(since "$t0")"
eq "clean exit" "$(prop Result) $(prop ExecMainStatus)" "success 0"
refute_probe() { ! curl -s -o /dev/null -m 1 http://127.0.0.1:8081/probe; }
check "the probe port is closed" refute_probe

section "kill -9"
systemctl start baton
wait_for "active again" 30 probe_is 200
old=$(prop MainPID)
restarts=$(prop NRestarts)
kill -9 "$old"
wait_for "systemd restarts it (Restart=on-failure)" 20 bash -c "p=\$(systemctl show -P MainPID baton); [[ \$p != 0 && \$p != $old && \$(systemctl is-active baton) == active ]]"
eq "NRestarts" "$(prop NRestarts)" "$((restarts + 1))"
wait_for "the probe is 200 again once the old lease expired" 40 probe_is 200

section "configuration error"
cp /etc/baton/baton.toml /root/good.toml
printf '\n[nonsense]\nkey = 1\n' >>/etc/baton/baton.toml
t0=$(date '+%Y-%m-%d %H:%M:%S')
systemctl restart baton >/dev/null 2>&1
wait_for "the service fails" 15 bash -c '[[ $(systemctl is-active baton) == failed ]]'
eq "with exit code 2" "$(prop ExecMainStatus)" 2
restarts=$(prop NRestarts)
sleep 3 # RestartSec=2s: a restart would have happened by now
eq "and is not restarted (RestartPreventExitStatus=2)" "$(prop NRestarts) $(systemctl is-active baton)" "$restarts failed"
journalctl -u baton --no-pager -o cat --since "$t0" | grep -q 'nonsense' && ok "the journal names the bad key" ||
	bad "the journal names the bad key" "$(journalctl -u baton --no-pager -o cat --since "$t0" | tail -5)"
cp /root/good.toml /etc/baton/baton.toml
systemctl reset-failed baton

section "a second pair on this host: baton@two (the template unit)"
# two.toml: the test configuration with its own ports and lease file.
sed -e 's/127.0.0.1:80"/127.0.0.1:8090"/' -e 's/127.0.0.1:8081/127.0.0.1:8091/' -e 's/127.0.0.1:8082/127.0.0.1:8092/' \
	-e 's|/var/lib/baton/lease|/var/lib/baton/two.lease|' /root/baton.toml >/root/two.toml
install -m 0640 -o root -g baton /root/two.toml /etc/baton/two.toml
check "check-config: baton.toml and two.toml fit on one host" \
	runuser -u baton -- baton check-config -offline /etc/baton/baton.toml /etc/baton/two.toml
systemctl start baton
wait_for "baton is active again" 30 probe_is 200
term1=$(curl -s -m 2 http://127.0.0.1:8082/status | sed -n 's/.*"term":\([0-9]*\).*/\1/p')
t0=$(now)
check "systemctl enable --now baton@two (returns once READY=1 arrived)" systemctl enable --now baton@two
echo "  start took $(since "$t0")"
iprop() { systemctl show -P "$1" baton@two; }
eq "baton@two is active (running)" "$(iprop ActiveState)/$(iprop SubState)" active/running
eq "it runs /etc/baton/two.toml" "$(iprop ExecStart | grep -o 'run -config [^ ;]*')" "run -config /etc/baton/two.toml"
eq "as baton" "$(stat -c %U "/proc/$(iprop MainPID)")" baton
eq "status text from sd_notify" "$(iprop StatusText)" serving
probe2_is() { [[ $(curl -s -o /dev/null -m 2 -w '%{http_code}' http://127.0.0.1:8091/probe) == "$1" ]]; }
wait_for "its probe (8091) answers 200: its own lease" 30 probe2_is 200
eq "two instance locks in the shared /var/lib/baton" "$(find /var/lib/baton -maxdepth 1 -name 'baton-nspawn-*.lock' | wc -l)" 2
check "the reload of baton@two" systemctl reload baton@two
# A configuration of the same node and lease under another unit is refused
# by the instance lock in the shared state folder.
install -m 0640 -o root -g baton /etc/baton/baton.toml /etc/baton/dup.toml
systemctl start baton@dup >/dev/null 2>&1
dup_refused() {
	local out
	out=$(journalctl -u baton@dup.service --no-pager -o cat 2>&1)
	[[ $out == *"another process runs this configuration"* ]]
}
wait_for "baton@dup (a copy of baton.toml) is refused by the instance lock" 10 dup_refused
systemctl stop baton@dup >/dev/null 2>&1
rm -f /etc/baton/dup.toml
eq "baton is still active, same term" "$(probe) $(curl -s -m 2 http://127.0.0.1:8082/status | sed -n 's/.*"term":\([0-9]*\).*/\1/p')" "200 $term1"
t0=$(now)
check "systemctl stop baton@two" systemctl stop baton@two
echo "  stop took $(since "$t0")"
eq "clean exit" "$(iprop Result) $(iprop ExecMainStatus)" "success 0"
eq "baton is untouched: probe 200, same term" "$(probe) $(curl -s -m 2 http://127.0.0.1:8082/status | sed -n 's/.*"term":\([0-9]*\).*/\1/p')" "200 $term1"
check "systemctl start baton@two (for the purge below)" systemctl start baton@two

section "purge under systemd"
check "dpkg -P baton (stops it first)" dpkg -P baton
eq "the service is gone" "$(systemctl is-active baton 2>&1)" inactive
eq "so is the instance baton@two" "$(systemctl is-active baton@two 2>&1)" inactive
check "its enable link is gone" test ! -e /etc/systemd/system/multi-user.target.wants/baton@two.service
check "the user is gone" bash -c '! getent passwd baton'
check "the state is gone" test ! -e /var/lib/baton
