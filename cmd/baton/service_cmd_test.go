package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckServiceName(t *testing.T) {
	for _, ok := range []string{"shop", "api-2", "A_b", "9", strings.Repeat("x", 64)} {
		if err := checkServiceName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-shop", "_x", "shop.toml", "a b", `a\b`, "a/b", "é", strings.Repeat("x", 65)} {
		if err := checkServiceName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestServiceConfigPath(t *testing.T) {
	abs := func(p string) (string, error) {
		if p == "bad" {
			return "", errors.New("no")
		}
		return filepath.Join("/cwd", p), nil
	}
	for _, tc := range []struct{ cfg, want string }{
		{"", "/data/baton/shop.toml"},             // NAME.toml beside the default configuration
		{"conf/shop.toml", "/cwd/conf/shop.toml"}, // the service starts elsewhere
		{"/etc/x.toml", "/cwd/etc/x.toml"},        // abs decides (filepath.Abs keeps it)
	} {
		got, err := serviceConfigPath("shop", tc.cfg, "/data/baton", abs)
		if want := filepath.FromSlash(tc.want); err != nil || got != want {
			t.Errorf("serviceConfigPath(%q) = %q, %v; want %q", tc.cfg, got, err, want)
		}
	}
	if _, err := serviceConfigPath("shop", "bad", "/data/baton", abs); err == nil || !strings.Contains(err.Error(), "-config bad") {
		t.Errorf("bad path: %v", err)
	}
}

func TestServiceSpec(t *testing.T) {
	sp := newServiceSpec("shop", `C:\Program Files\baton\baton.exe`, `C:\ProgramData\baton\shop.toml`)
	if sp.name != "baton-shop" || sp.display != "baton (shop)" || sp.exe != `C:\Program Files\baton\baton.exe` {
		t.Errorf("spec %+v", sp)
	}
	if got := strings.Join(sp.args, " "); got != `run -service -config C:\ProgramData\baton\shop.toml` {
		t.Errorf("args %q", got)
	}
	if !strings.Contains(sp.description, `C:\ProgramData\baton\shop.toml`) {
		t.Errorf("description %q does not name the configuration", sp.description)
	}
	// The same account and recovery as the .msi's service "baton".
	wxs, err := os.ReadFile("../../packaging/msi/baton.wxs")
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, d := range sp.restarts {
		actions = append(actions, fmt.Sprintf("restart/%d", d/time.Millisecond))
	}
	for _, want := range []string{
		`Account="` + sp.account + `"`,
		fmt.Sprintf(`"failure baton reset= %d actions= %s"`, int(sp.resetPeriod/time.Second), strings.Join(actions, "/")),
		`"failureflag baton 1"`, // service_cmd_windows.go: SetRecoveryActionsOnNonCrashFailures(true)
		`Start="auto" ErrorControl="normal"`,
		`Arguments="` + strings.Join(sp.args[:len(sp.args)-1], " ") + ` &quot;`, // run -service -config "FILE"
	} {
		if !strings.Contains(string(wxs), want) {
			t.Errorf("packaging/msi/baton.wxs lacks %s: the .msi's service and baton service install differ", want)
		}
	}
}

func TestIsBatonCommandLine(t *testing.T) {
	for cmdline, want := range map[string]bool{
		`"C:\Program Files\baton\baton.exe" run -config "C:\ProgramData\baton\shop.toml"`: true,
		`C:\baton\baton.exe run -config C:\ProgramData\baton\shop.toml`:                   true,
		`"C:\Program Files\baton\BATON.EXE" run`:                                          true,
		`"C:\Program Files\baton\baton.exe" status`:                                       false,
		`"C:\Program Files\baton\baton.exe"`:                                              false,
		`C:\Windows\System32\svchost.exe -k netsvcs`:                                      false,
		`"C:\Program Files\other\other.exe" run`:                                          false,
		`"C:\Program Files\baton\baton.exe run`:                                           false, // unbalanced quote
		``:                                                                                false,
	} {
		if got := isBatonCommandLine(cmdline); got != want {
			t.Errorf("isBatonCommandLine(%s) = %v, want %v", cmdline, got, want)
		}
	}
}

func TestPeekRunFlags(t *testing.T) {
	def := defaultConfigPath()
	for _, tc := range []struct {
		args    []string
		config  string
		service bool
	}{
		{nil, def, false},
		{[]string{"-service"}, def, true}, // the .msi's service: the default configuration
		{[]string{"-service", "-config", "/data/baton/shop.toml"}, "/data/baton/shop.toml", true},
		{[]string{"--config=/srv/api/api.toml", "--service=true"}, "/srv/api/api.toml", true},
		{[]string{"-config=/srv/x", "-config", "/srv/y.conf"}, "/srv/y.conf", false}, // the last one wins
		{[]string{"--", "-config", "/srv/z.toml"}, def, false},
		{[]string{"-service", "-config"}, def, true},                         // cmdRun then fails with exit 2
		{[]string{"-service", "-nope", "-config", "/srv/z.toml"}, def, true}, // as far as they parse
	} {
		if got := peekRunFlags(tc.args); got.config != tc.config || got.service != tc.service {
			t.Errorf("peekRunFlags(%q) = %+v, want config %q, service %v", tc.args, got, tc.config, tc.service)
		}
	}
}

func TestServiceLogPath(t *testing.T) {
	for cfg, want := range map[string]string{
		"/data/baton/baton.toml": "/data/baton/baton.log", // the .msi's service: as before
		"/data/baton/shop.toml":  "/data/baton/shop.log",
		"/srv/api/api":           "/srv/api/api.log",
		"/srv/odd.log":           "/srv/odd.log.log", // never the configuration itself
	} {
		if got := serviceLogPath(filepath.FromSlash(cfg)); got != filepath.FromSlash(want) {
			t.Errorf("serviceLogPath(%q) = %q, want %q", cfg, got, want)
		}
	}
}

func TestServiceCommandLine(t *testing.T) {
	for _, tc := range []struct {
		exe  string
		args []string
		want string
	}{
		{`C:\Program Files\baton\baton.exe`, []string{"run", "-service", "-config", `C:\ProgramData\baton\shop.toml`},
			`"C:\Program Files\baton\baton.exe" run -service -config C:\ProgramData\baton\shop.toml`},
		{`C:\baton\baton.exe`, []string{"run", "-service", "-config", `D:\my apps\shop.toml`}, // quoted without a space too
			`"C:\baton\baton.exe" run -service -config "D:\my apps\shop.toml"`},
		{`C:\b.exe`, []string{"", `a"b`, `C:\dir with space\`, `x\\"y z`},
			`"C:\b.exe" "" "a\"b" "C:\dir with space\\" "x\\\\\"y z"`},
	} {
		got := serviceCommandLine(tc.exe, tc.args)
		if got != tc.want {
			t.Errorf("serviceCommandLine(%q, %q) = %s, want %s", tc.exe, tc.args, got, tc.want)
		}
		if strings.HasSuffix(tc.exe, "baton.exe") && !isBatonCommandLine(got) {
			t.Errorf("%s is not recognised as baton's", got)
		}
	}
}

// The command's arguments are checked on every platform; elsewhere than on
// Windows it then points at the systemd template unit.
func TestServiceCommandArguments(t *testing.T) {
	if serviceManager {
		t.Skip("would talk to the service manager")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "baton service install -name NAME"},
		{[]string{"start", "-name", "x"}, "baton service install -name NAME"},
		{[]string{"install"}, "-name is required"},
		{[]string{"install", "-name", "a b"}, `-name "a b": 1 to 64 letters`},
		{[]string{"remove", "-name", "shop", "-config", "x.toml"}, "flag provided but not defined: -config"},
		{[]string{"install", "-name", "shop", "extra"}, `unexpected argument "extra"`},
		{[]string{"install", "-name", "shop", "-config", "shop.toml"}, "systemctl enable --now baton@shop    (reads /etc/baton/shop.toml)"},
		{[]string{"remove", "-name", "shop"}, "only on Windows"},
	} {
		var out, errb bytes.Buffer
		code := run(append([]string{"service"}, tc.args...), &out, &errb)
		if code != exitUsage || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("baton service %q: exit %d, want 2 with %q:\n%s%s", tc.args, code, tc.want, out.String(), errb.String())
		}
	}
}

// -service is the Windows service manager's; elsewhere it is a usage error,
// before the configuration is read.
func TestRunServiceOnlyOnWindows(t *testing.T) {
	if serviceManager {
		t.Skip("would wait for the service manager")
	}
	var out, errb bytes.Buffer
	code := run([]string{"run", "-service", "-config", filepath.Join(t.TempDir(), "none.toml")}, &out, &errb)
	if code != exitUsage || !strings.Contains(errb.String(), "-service is for the Windows service manager") {
		t.Errorf("baton run -service: exit %d, want 2 with the reason:\n%s", code, errb.String())
	}
}
