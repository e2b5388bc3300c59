#!/usr/bin/env bash
# Tests of the .msi, on Linux: the tables wixl wrote (service, components,
# upgrade code, version, custom actions and their order, event source), the
# files msiextract gets out of it against the build inputs, the Windows
# example config, and Authenticode signatures (a throw-away self-signed
# certificate) with osslsigncode verify.
#
#   packaging/test/test-msi.sh        (make test-packages runs it)
set -uo pipefail
cd "$(dirname "$0")/../.."
source packaging/test/lib.sh

UPGRADE_CODE="{6E0F3A52-2C55-4C1C-9C4B-3E0A8E5B7A10}"

packaging/scripts/install-deps.sh msi test
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

section "build"
t0=$(date +%s.%N)
msi=$(OUT=$tmp/plain packaging/scripts/build-msi.sh 2>"$tmp/build.log") || { cat "$tmp/build.log"; exit 1; }
t1=$(date +%s.%N)
printf '  make msi took %.1fs; %s: %s bytes\n' "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$(basename "$msi")" "$(stat -c %s "$msi")"
eval "$(packaging/scripts/version.sh)"

# row TABLE: the table's rows (tab-separated), without the three header lines.
row() { msiinfo export "$msi" "$1" | tail -n +4 | tr -d '\r'; }
# col TABLE KEY N: column N of the row whose first column is KEY.
col() { row "$1" | awk -F'\t' -v k="$2" -v n="$3" '$1 == k { print $n }'; }

section "product"
eq "ProductName" "$(col Property ProductName 2)" baton
eq "ProductVersion" "$(col Property ProductVersion 2)" "$MSI_VERSION"
eq "UpgradeCode (must never change)" "$(col Property UpgradeCode 2)" "$UPGRADE_CODE"
contains "64-bit package" "$(msiinfo suminfo "$msi")" "Template: x64;1033"
contains "its licence in the summary" "$(msiinfo suminfo "$msi")" "Comments: Apache-2.0 (copyright.txt)"
eq "Manufacturer" "$(col Property Manufacturer 2)" "the baton authors"
eq "upgrade: older versions are removed" "$(row Upgrade | awk -F'\t' '$5 == 1 { print $1, $3, $7 }')" \
	"$UPGRADE_CODE $MSI_VERSION WIX_UPGRADE_DETECTED"
eq "upgrade: newer versions are detected" "$(row Upgrade | awk -F'\t' '$5 == 2 { print $1, $2, $7 }')" \
	"$UPGRADE_CODE $MSI_VERSION WIX_DOWNGRADE_DETECTED"
eq "a downgrade is refused" "$(row LaunchCondition | cut -f1)" "NOT WIX_DOWNGRADE_DETECTED"

section "service"
# ServiceInstall: ServiceInstall Name DisplayName ServiceType StartType ErrorControl
#   LoadOrderGroup Dependencies StartName Password Arguments Component_ Description
eq "service name" "$(col ServiceInstall BatonService 2)" baton
eq "own process (16)" "$(col ServiceInstall BatonService 4)" 16
eq "automatic start (2)" "$(col ServiceInstall BatonService 5)" 2
eq "error control normal (1)" "$(col ServiceInstall BatonService 6)" 1
eq "account" "$(col ServiceInstall BatonService 9)" 'NT AUTHORITY\LocalService'
eq "arguments: -service, the configuration quoted" "$(col ServiceInstall BatonService 11)" 'run -service -config "[CommonAppDataFolder]baton\baton.toml"'
# ImagePath: Windows Installer writes the key file's path, a space and the
# Arguments; the ServiceImagePath custom action writes it again with the
# program's path quoted (sc.exe parses binPath= as one argument with \"
# for each quote), so that a path with spaces is never split (CWE-428).
eq "ImagePath written quoted after InstallServices (sc config)" "$(col CustomAction ServiceImagePath 4)" \
	'config baton binPath= "\"[#BatonExeFile]\" run -service -config \"[CommonAppDataFolder]baton\baton.toml\""'
eq "  the same arguments as ServiceInstall's" \
	"$(col CustomAction ServiceImagePath 4 | sed 's/.*\[#BatonExeFile\]\\" //; s/"$//; s/\\"/"/g')" \
	"$(col ServiceInstall BatonService 11)"
eq "  BatonExeFile is baton.exe" "$(col File BatonExeFile 3)" baton.exe
eq "installed with baton.exe" "$(col ServiceInstall BatonService 12)" BatonExe
# ServiceControl: ServiceControl Name Event Arguments Wait Component_
eq "stopped on install and uninstall, removed on uninstall (162)" "$(col ServiceControl BatonServiceControl 3)" 162
eq "not started by the install itself" "$(( $(col ServiceControl BatonServiceControl 3) & 0x11 ))" 0
eq "the installer waits for the stop" "$(col ServiceControl BatonServiceControl 5)" 1

section "components and directories"
eq "components" "$(row Component | cut -f1 | sort | tr '\n' ' ')" "BatonExe Copyright EventSource Example "
bad64=$(row Component | while IFS=$'\t' read -r id _ _ attr _; do (((attr & 256) != 0)) || echo "$id"; done)
eq "every component is 64-bit" "$bad64" ""
eq "INSTALLDIR is Program Files\\baton" "$(col Directory INSTALLDIR 2) $(col Directory INSTALLDIR 3)" "ProgramFiles64Folder baton"
eq "DATADIR is ProgramData\\baton" "$(col Directory DATADIR 2) $(col Directory DATADIR 3)" "CommonAppDataFolder baton"
eq "files" "$(row File | awk -F'\t' '{ print $2 ":" $3 }' | sort | tr '\n' ' ')" \
	"BatonExe:baton.exe Copyright:copyright.txt Example:baton.example.toml "
eq "the real config is not an installer file (upgrades keep it)" "$(row File | grep -c 'baton\.toml	' || true)" 0
eq "event source" "$(row Registry | awk -F'\t' '{ print $2, $3, $4 "=" $5 }' | sort)" \
	'2 SYSTEM\CurrentControlSet\Services\EventLog\Application\baton\ CustomSource=#1
2 SYSTEM\CurrentControlSet\Services\EventLog\Application\baton\ EventMessageFile=%SystemRoot%\System32\EventCreate.exe
2 SYSTEM\CurrentControlSet\Services\EventLog\Application\baton\ TypesSupported=#7'

section "custom actions"
seq() { col InstallExecuteSequence "$1" 3; }
for ca in RestrictDataDir ResetDataDirFiles CreateConfig ServiceImagePath ServiceRecovery ServiceRecoveryOnError StartService; do
	type=$(col CustomAction "$ca" 2)
	eq "$ca: exe from a property (50), deferred, as LocalSystem" "$((type & 0x3f)) $((type & 0x400)) $((type & 0x800))" "50 1024 2048"
done
lt() { if (($2 < $3)); then ok "$1"; else bad "$1" "$2 is not before $3"; fi; }
lt "permissions after the files are installed" "$(seq InstallFiles)" "$(seq RestrictDataDir)"
lt "existing files get them next" "$(seq RestrictDataDir)" "$(seq ResetDataDirFiles)"
lt "the config is created under them" "$(seq ResetDataDirFiles)" "$(seq CreateConfig)"
lt "the ImagePath is quoted after the service is installed" "$(seq InstallServices)" "$(seq ServiceImagePath)"
lt "recovery is set after the service is installed" "$(seq InstallServices)" "$(seq ServiceRecovery)"
lt "recovery before the install ends" "$(seq ServiceRecoveryOnError)" "$(seq InstallFinalize)"
lt "the old version is removed before the new one installs" "$(seq RemoveExistingProducts)" "$(seq InstallInitialize)"
contains "the config is copied only when missing" "$(col CustomAction CreateConfig 4)" \
	'if not exist "[DATADIR]baton.toml" copy /y "[DATADIR]baton.example.toml" "[DATADIR]baton.toml"'
contains "the data folder: SYSTEM, Administrators, LocalService only" "$(col CustomAction RestrictDataDir 4)" \
	'/inheritance:r /grant:r *S-1-5-18:(OI)(CI)F *S-1-5-32-544:(OI)(CI)F *S-1-5-19:(OI)(CI)M'
eq "restart on failure" "$(col CustomAction ServiceRecovery 4)" \
	"failure baton reset= 86400 actions= restart/5000/restart/5000/restart/60000"
eq "StartService only with START_SERVICE=1" "$(col InstallExecuteSequence StartService 2)" \
	'START_SERVICE="1" AND NOT REMOVE~="ALL"'
eq "StartService failing does not fail the install" "$(( $(col CustomAction StartService 2) & 0x40 ))" 64

section "files in the package"
mkdir -p "$tmp/x"
msiextract -C "$tmp/x" "$msi" >/dev/null
for f in baton.exe baton.example.toml copyright.txt; do
	eq "$f matches the build input" "$(sha256sum <"$tmp/x/baton/$f")" "$(sha256sum <"$tmp/plain/msi/$f")"
done
eq "nothing else" "$(cd "$tmp/x" && find . -type f | sort | tr '\n' ' ')" \
	"./baton/baton.example.toml ./baton/baton.exe ./baton/copyright.txt "
contains "baton.exe is a 64-bit Windows program" "$(file -b "$tmp/x/baton/baton.exe")" "PE32+ executable"
info=$(go version -m "$tmp/x/baton/baton.exe")
contains "built for windows/amd64" "$info" "GOOS=windows"
contains "without cgo" "$info" "CGO_ENABLED=0"
check "with the version ($VERSION) linked in" grep -qaF "$VERSION" "$tmp/x/baton/baton.exe"
contains "copyright.txt: baton is Apache-2.0" "$(cat "$tmp/x/baton/copyright.txt")" "License: Apache-2.0"
eq "  and it ends with the license's full text" "$(tail -n "$(wc -l <LICENSE)" "$tmp/x/baton/copyright.txt" | tr -d '\r')" "$(cat LICENSE)"
check "the example config uses CRLF" grep -q $'\r$' "$tmp/x/baton/baton.example.toml"
check "it has no Unix paths left, in values or comments" bash -c "! grep -nE '/(etc|var)/' '$tmp/x/baton/baton.example.toml'"
contains "its header says how the .msi uses it" "$(sed -n 3p "$tmp/x/baton/baton.example.toml")" \
	'# The .msi creates %ProgramData%\baton\baton.toml from this file when there is none.'
stale=""
while IFS= read -r rule; do
	printf '%s\n' "$rule" >"$tmp/rule.sed"
	sed -f "$tmp/rule.sed" baton.example.toml | cmp -s - baton.example.toml && stale+="$rule"$'\n'
done < <(grep '^s|' packaging/msi/windows-example.sed)
eq "every line rule of windows-example.sed still finds its line" "$stale" ""
contains "its lease file is under ProgramData" "$(cat "$tmp/x/baton/baton.example.toml")" "path = 'C:\\ProgramData\\baton\\lease'"
CGO_ENABLED=0 go build -o "$tmp/baton" ./cmd/baton
check "it is a valid configuration (check-config -offline)" "$tmp/baton" check-config -offline -config "$tmp/x/baton/baton.example.toml"
refute "unsigned: osslsigncode finds no signature" osslsigncode verify -in "$msi"

section "signed build (SIGN_CERT, SIGN_KEY)"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=baton test signing" \
	-addext "extendedKeyUsage=codeSigning" -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
smsi=$(SIGN_CERT=$tmp/cert.pem SIGN_KEY=$tmp/key.pem OUT=$tmp/signed packaging/scripts/build-msi.sh 2>>"$tmp/build.log")
check "the msi signature verifies" osslsigncode verify -CAfile "$tmp/cert.pem" -in "$smsi"
mkdir -p "$tmp/sx"
msiextract -C "$tmp/sx" "$smsi" >/dev/null
check "the exe inside it is signed too" osslsigncode verify -CAfile "$tmp/cert.pem" -in "$tmp/sx/baton/baton.exe"
eq "and is the signed build input" "$(sha256sum <"$tmp/sx/baton/baton.exe")" "$(sha256sum <"$tmp/signed/msi/baton.exe")"
cp "$smsi" "$tmp/tampered.msi"
printf 'x' | dd of="$tmp/tampered.msi" bs=1 seek=$(($(stat -c %s "$smsi") / 2)) conv=notrunc 2>/dev/null
refute "a tampered msi does not verify" osslsigncode verify -CAfile "$tmp/cert.pem" -in "$tmp/tampered.msi"

finish
