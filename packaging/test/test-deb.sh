#!/usr/bin/env bash
# Tests of the .deb on this machine: build reproducibility, control fields,
# file list with modes and owners, conffiles, lintian, the unit and the
# template unit baton@.service (systemd-analyze verify and security, the
# same sandbox; check-config of two configurations for one host), and the
# maintainer scripts through
# real dpkg install, upgrade with an edited conffile, remove and purge.
#
# Needs root (dpkg -i). Refuses to run when a baton package or a baton user
# already exists; purges what it installed and removes the user at the end,
# also on failure.
#
#   packaging/test/test-deb.sh        (make test-packages runs it)
set -uo pipefail
cd "$(dirname "$0")/../.."
source packaging/test/lib.sh

# The exposure score systemd-analyze security must not exceed, in its
# --threshold unit (tenths: 20 = 2.0 on the 0 (fully sandboxed) to 10 (no
# sandbox) scale it prints; up to 2.0 is rated "OK").
SECURITY_THRESHOLD=${SECURITY_THRESHOLD:-20}

if [[ $(id -u) -ne 0 ]]; then
	echo "test-deb: needs root (dpkg -i, a system user)" >&2
	exit 2
fi
if dpkg-query -W -f '${Status}' baton 2>/dev/null | grep -q 'installed\|config-files'; then
	echo "test-deb: a baton package is already installed here; not touching it" >&2
	exit 2
fi
if getent passwd baton >/dev/null || getent group baton >/dev/null; then
	echo "test-deb: a baton user or group already exists here; not touching it" >&2
	exit 2
fi
packaging/scripts/install-deps.sh deb test

tmp=$(mktemp -d)
cleanup() {
	if dpkg-query -W baton >/dev/null 2>&1; then
		dpkg --purge baton >/dev/null 2>&1 || true
	fi
	for p in /etc/baton/baton.toml /etc/baton; do
		dpkg-statoverride --list "$p" >/dev/null 2>&1 && dpkg-statoverride --remove "$p"
	done
	getent passwd baton >/dev/null && deluser --quiet --system baton >/dev/null 2>&1
	getent group baton >/dev/null && delgroup --quiet --system baton >/dev/null 2>&1
	rm -rf "$tmp" /var/lib/baton /var/log/baton /etc/systemd/system/baton.service \
		/etc/systemd/system/multi-user.target.wants/baton.service \
		/etc/systemd/system/multi-user.target.wants/baton@example.service /etc/baton/example.toml
	rmdir /etc/baton 2>/dev/null || true
}
trap cleanup EXIT

section "build (twice, for reproducibility) and two upgrade versions"
t0=$(date +%s.%N)
deb1=$(OUT=$tmp/a packaging/scripts/build-deb.sh 2>"$tmp/build.log") || { cat "$tmp/build.log"; exit 1; }
t1=$(date +%s.%N)
printf '  make deb took %.1fs\n' "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
debA=$(OUT=$tmp/b packaging/scripts/build-deb.sh 2>>"$tmp/build.log")
eq "two builds are bit-identical (SOURCE_DATE_EPOCH)" "$(sha256sum <"$deb1")" "$(sha256sum <"$debA")"
eval "$(packaging/scripts/version.sh)"
v1=$DEB_VERSION
v2="$v1+upgrade"
v3="$v1+upgrade2"
deb2=$(DEB_VERSION=$v2 OUT=$tmp/v2 packaging/scripts/build-deb.sh 2>>"$tmp/build.log")
{ cat baton.example.toml; printf '\n# A line added by version %s.\n' "$v3"; } >"$tmp/example-v3.toml"
deb3=$(DEB_VERSION=$v3 CONFIG_SRC=$tmp/example-v3.toml OUT=$tmp/v3 packaging/scripts/build-deb.sh 2>>"$tmp/build.log")
printf '  %s: %s bytes\n' "$(basename "$deb1")" "$(stat -c %s "$deb1")"

section "control fields"
field() { dpkg-deb -f "$deb1" "$1"; }
eq "Package" "$(field Package)" baton
eq "Version" "$(field Version)" "$v1-1"
eq "Architecture" "$(field Architecture)" amd64
eq "Section" "$(field Section)" net
eq "Priority" "$(field Priority)" optional
eq "Depends" "$(field Depends)" adduser
eq "Homepage" "$(field Homepage)" https://github.com/batonproxy/baton
contains "copyright: baton is Apache-2.0" "$(dpkg-deb --fsys-tarfile "$deb1" | tar -xO ./usr/share/doc/baton/copyright)" \
	"License: Apache-2.0"
if [[ -z ${DEB_MAINTAINER:-} ]]; then
	eq "Maintainer is the project's" "$(field Maintainer)" "baton maintainers <maintainers@batonproxy.github.io>"
fi
refute "Maintainer is no placeholder" grep -qE '\.invalid>|example\.(com|org)>' <<<"$(field Maintainer)"
contains "Description has a synopsis" "$(field Description)" "active/standby front door"
eq "maintainer scripts" "$(dpkg-deb --ctrl-tarfile "$deb1" | tar -t | sort | tr '\n' ' ')" \
	"./conffiles ./control ./md5sums ./postinst ./postrm ./prerm "
eq "conffiles" "$(dpkg-deb --ctrl-tarfile "$deb1" | tar -xO ./conffiles)" "/etc/baton/baton.toml"

section "files, modes, owners"
want_files="drwxr-xr-x root/root ./etc/
drwxr-xr-x root/root ./etc/baton/
-rw-r----- root/root ./etc/baton/baton.toml
drwxr-xr-x root/root ./lib/
drwxr-xr-x root/root ./lib/systemd/
drwxr-xr-x root/root ./lib/systemd/system/
-rw-r--r-- root/root ./lib/systemd/system/baton.service
-rw-r--r-- root/root ./lib/systemd/system/baton@.service
drwxr-xr-x root/root ./usr/
drwxr-xr-x root/root ./usr/bin/
-rwxr-xr-x root/root ./usr/bin/baton
drwxr-xr-x root/root ./usr/share/
drwxr-xr-x root/root ./usr/share/doc/
drwxr-xr-x root/root ./usr/share/doc/baton/
-rw-r--r-- root/root ./usr/share/doc/baton/changelog.Debian.gz
-rw-r--r-- root/root ./usr/share/doc/baton/copyright
drwxr-xr-x root/root ./usr/share/lintian/
drwxr-xr-x root/root ./usr/share/lintian/overrides/
-rw-r--r-- root/root ./usr/share/lintian/overrides/baton
drwxr-xr-x root/root ./usr/share/man/
drwxr-xr-x root/root ./usr/share/man/man1/
-rw-r--r-- root/root ./usr/share/man/man1/baton.1.gz"
eq "file list" "$(dpkg-deb -c "$deb1" | awk '{print $1, $2, $6}' | sort -k3)" "$want_files"
mtimes=$(dpkg-deb -c "$deb1" | awk '{print $4, $5}' | sort -u)
eq "every mtime is SOURCE_DATE_EPOCH" "$mtimes" "$(date -u -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}" '+%Y-%m-%d %H:%M')"
mkdir -p "$tmp/x"
dpkg-deb -x "$deb1" "$tmp/x"
contains "the binary is static" "$(file -b "$tmp/x/usr/bin/baton")" "statically linked"
contains "the binary reports the version" "$("$tmp/x/usr/bin/baton" version)" "baton $VERSION "
eq "the conffile is baton.example.toml" "$(sha256sum <"$tmp/x/etc/baton/baton.toml")" "$(sha256sum <baton.example.toml)"
eq "the unit is packaging/deb/baton.service" "$(sha256sum <"$tmp/x/lib/systemd/system/baton.service")" \
	"$(sha256sum <packaging/deb/baton.service)"
eq "the template unit is packaging/deb/baton@.service" "$(sha256sum <"$tmp/x/lib/systemd/system/baton@.service")" \
	"$(sha256sum <packaging/deb/baton@.service)"
check "the man page renders without warnings" bash -c "MANWIDTH=80 man --warnings -l '$tmp/x/usr/share/man/man1/baton.1.gz' 2>&1 >/dev/null | (! grep .)"

section "lintian"
lint=$(lintian --display-level '>=pedantic' --fail-on error,warning "$deb1" 2>&1 | grep -v 'running with root privileges')
lrc=${PIPESTATUS[0]}
eq "lintian: no error or warning" "$lrc $(grep -E '^(E|W):' <<<"$lint")" "0 "
[[ -z $lint ]] || printf '%s\n' "$lint" | sed 's/^/          /'

section "install ($v1)"
check "dpkg -i" dpkg -i "$deb1"
entry=$(getent passwd baton)
IFS=: read -r _ _ uid gid _ home shell <<<"$entry"
check "user baton is a system user (uid $uid)" test "$uid" -lt 1000
eq "its group is baton" "$(getent group "$gid" | cut -d: -f1)" baton
eq "its home is the state directory" "$home" /var/lib/baton
eq "it cannot log in" "$shell" /usr/sbin/nologin
eq "/etc/baton" "$(stat -c '%a %U:%G' /etc/baton)" "750 root:baton"
eq "/etc/baton/baton.toml" "$(stat -c '%a %U:%G' /etc/baton/baton.toml)" "640 root:baton"
check "the service user can read the config" runuser -u baton -- /usr/bin/baton check-config -offline -config /etc/baton/baton.toml
refute "other users cannot" runuser -u nobody -- cat /etc/baton/baton.toml
check "the unit is installed" test -f /lib/systemd/system/baton.service
refute "the unit is not enabled on a first install" test -e /etc/systemd/system/multi-user.target.wants/baton.service

section "the unit"
verify=$(systemd-analyze verify /lib/systemd/system/baton.service 2>&1)
eq "systemd-analyze verify prints nothing" "$verify" ""
sec=$(systemd-analyze security --offline=yes --threshold="$SECURITY_THRESHOLD" /lib/systemd/system/baton.service 2>&1)
src=$?
score=$(grep -o 'Overall exposure level for baton.service: [0-9.]* [A-Z]*' <<<"$sec" | sed 's/.*: //')
eq "systemd-analyze security: $score, at most $((SECURITY_THRESHOLD / 10)).$((SECURITY_THRESHOLD % 10))" "$src" 0
for key in "Type=notify" "User=baton" "AmbientCapabilities=CAP_NET_BIND_SERVICE" "Restart=on-failure" \
	"StateDirectory=baton" "ProtectSystem=strict"; do
	check "unit has $key" grep -qx "$key" /lib/systemd/system/baton.service
done
contains "ExecReload signals the main PID without /bin/kill" \
	"$(grep '^ExecReload=' /lib/systemd/system/baton.service)" "ExecReload=/bin/sh -c 'kill -HUP"

section "the template unit baton@.service (more pairs on this host)"
verify=$(systemd-analyze verify /lib/systemd/system/baton@example.service 2>&1)
eq "systemd-analyze verify baton@example.service prints nothing" "$verify" ""
sec=$(systemd-analyze security --offline=yes --threshold="$SECURITY_THRESHOLD" /lib/systemd/system/baton@example.service 2>&1)
src=$?
score=$(grep -o 'Overall exposure level for baton@example.service: [0-9.]* [A-Z]*' <<<"$sec" | sed 's/.*: //')
eq "systemd-analyze security: $score, at most $((SECURITY_THRESHOLD / 10)).$((SECURITY_THRESHOLD % 10))" "$src" 0
# The template differs from baton.service only where the instance name
# goes: the same sandbox, restart policy and directories.
settings() { grep -vE '^(#|$|Description=|ExecStart=|EnvironmentFile=)' "$1"; }
eq "the same settings as baton.service but for the instance's own" \
	"$(diff <(settings /lib/systemd/system/baton.service) <(settings /lib/systemd/system/baton@.service))" ""
check "ExecStart reads /etc/baton/NAME.toml" grep -qx 'ExecStart=/usr/bin/baton run -config /etc/baton/%i.toml' /lib/systemd/system/baton@.service
check "EnvironmentFile is the instance's own" grep -qx 'EnvironmentFile=-/etc/default/baton-%i' /lib/systemd/system/baton@.service
check "Description names the instance" grep -qx 'Description=baton active/standby front door (%i)' /lib/systemd/system/baton@.service

section "two configurations for one host (check-config with several files)"
# example.toml: the shipped baton.toml with its own ports and blob, as the
# README tells; check-config compares them as the service user.
install -m 0640 -o root -g baton /dev/null /etc/baton/example.toml
sed -e 's/^http  = ":80"/http  = ":8090"/' -e 's/^listen = ":8081"/listen = ":8091"/' \
	-e 's/^listen     = "127.0.0.1:8082"/listen     = "127.0.0.1:8092"/' \
	-e 's/^blob        = "leader"/blob        = "example"/' /etc/baton/baton.toml >/etc/baton/example.toml
check "baton.toml and example.toml fit on one host" \
	runuser -u baton -- /usr/bin/baton check-config -offline /etc/baton/baton.toml /etc/baton/example.toml
cp /etc/baton/baton.toml /etc/baton/example.toml
out=$(runuser -u baton -- /usr/bin/baton check-config -offline -config /etc/baton/baton.toml -config /etc/baton/example.toml 2>&1)
eq "a copy of baton.toml does not (exit 2)" "$?" 2
for want in 'listen.http = ":80"' 'probe.listen = ":8081"' 'admin.listen = "127.0.0.1:8082"' \
	'both compete for the same lease'; do
	contains "  it names $want" "$out" "$want"
done
rm -f /etc/baton/example.toml

section "upgrade to $v2 with an edited conffile (the admin enabled the unit)"
printf '\n# edited by the admin\n' >>/etc/baton/baton.toml
edited=$(sha256sum </etc/baton/baton.toml)
systemctl --root=/ --quiet enable baton.service
systemctl --root=/ --quiet enable baton@example.service
check "dpkg -i (upgrade)" dpkg -i "$deb2"
eq "installed version" "$(dpkg-query -W -f '${Version}' baton)" "$v2-1"
eq "the edited conffile is kept" "$(sha256sum </etc/baton/baton.toml)" "$edited"
eq "its owner and mode are kept" "$(stat -c '%a %U:%G' /etc/baton/baton.toml)" "640 root:baton"
eq "the user is the same" "$(getent passwd baton)" "$entry"
check "the unit stays enabled" test -L /etc/systemd/system/multi-user.target.wants/baton.service
check "so does an instance of the template" test -L /etc/systemd/system/multi-user.target.wants/baton@example.service

section "upgrade to $v3, whose conffile changed, keeping the admin's (--force-confold)"
check "dpkg -i --force-confold" dpkg -i --force-confold "$deb3"
eq "the edited conffile is kept" "$(sha256sum </etc/baton/baton.toml)" "$edited"
eq "the new one is beside it" "$(sha256sum </etc/baton/baton.toml.dpkg-dist)" "$(sha256sum <"$tmp/example-v3.toml")"
eq "owner and mode are kept" "$(stat -c '%a %U:%G' /etc/baton/baton.toml)" "640 root:baton"
rm -f /etc/baton/baton.toml.dpkg-dist

section "remove"
mkdir -p /var/lib/baton && echo state >/var/lib/baton/lease && chown -R baton:baton /var/lib/baton
check "dpkg -r" dpkg -r baton
refute "the binary is gone" test -e /usr/bin/baton
refute "the template unit is gone" test -e /lib/systemd/system/baton@.service
check "the conffile stays" test -f /etc/baton/baton.toml
check "the user stays" getent passwd baton
check "the state stays" test -f /var/lib/baton/lease
eq "the unit is masked while the package is removed" "$(readlink /etc/systemd/system/baton.service)" /dev/null

section "purge"
check "dpkg -P" dpkg -P baton
refute "the conffile is gone" test -e /etc/baton/baton.toml
refute "/etc/baton is gone" test -e /etc/baton
refute "the user is gone" getent passwd baton
refute "the group is gone" getent group baton
refute "the state is gone" test -e /var/lib/baton
eq "no statoverride is left" "$(dpkg-statoverride --list | grep /etc/baton)" ""
refute "no mask is left" test -L /etc/systemd/system/baton.service
refute "no enable link is left" test -L /etc/systemd/system/multi-user.target.wants/baton.service
refute "nor one of an instance" test -L /etc/systemd/system/multi-user.target.wants/baton@example.service
refute "dpkg forgot the package" dpkg-query -W baton

finish
