package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pairConfig is a minimal valid configuration for a node of one pair on
// this host: its own ports and lease file.
func pairConfig(node string, base int, lease string) string {
	return fmt.Sprintf(`node_name = %q
[listen]
http = "127.0.0.1:%d"
[probe]
listen = "127.0.0.1:%d"
[admin]
listen = "127.0.0.1:%d"
[lease]
backend = "file"
[lease.file]
path = %q
`, node, base, base+1, base+2, lease)
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func checkConfig(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(append([]string{"check-config", "-offline"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheckConfigSeveralFiles(t *testing.T) {
	dir := t.TempDir()
	shop := writeFile(t, dir, "shop.toml", pairConfig("vm1", 18080, filepath.Join(dir, "shop", "lease")))
	api := writeFile(t, dir, "api.toml", pairConfig("vm1", 19080, filepath.Join(dir, "api", "lease")))

	t.Run("two that fit", func(t *testing.T) {
		for _, args := range [][]string{{"-config", shop, "-config", api}, {shop, api}, {"-config", shop, api}} {
			code, out, errs := checkConfig(args...)
			if code != 0 || !strings.Contains(out, "2 configurations can run on one host") ||
				!strings.Contains(out, "# "+shop+" is valid: node vm1, http 127.0.0.1:18080") {
				t.Errorf("check-config %v: exit %d\n%s%s", args, code, out, errs)
			}
		}
	})

	t.Run("a port and the lease in common", func(t *testing.T) {
		// The second node of shop's pair on the same host, on api's
		// probe port, with its admin API on every address.
		other := writeFile(t, dir, "shop-b.toml", strings.Replace(pairConfig("vm2", 19081, filepath.Join(dir, "shop", "lease")),
			`listen = "127.0.0.1:19083"`, `listen = "0.0.0.0:18080"`, 1))
		code, out, errs := checkConfig(shop, api, other)
		if code != 2 {
			t.Fatalf("exit %d, want 2\n%s%s", code, out, errs)
		}
		for _, want := range []string{
			shop + " and " + other + " cannot run on one host: both listen on port 18080 (\"0.0.0.0:18080\" listens on every address)",
			"    " + shop + `:3: listen.http = "127.0.0.1:18080"`,
			"    " + other + `:7: admin.listen = "0.0.0.0:18080"`,
			shop + " and " + other + " cannot run on one host: both compete for the same lease",
			"    " + other + `:11: lease.file.path = "` + filepath.Join(dir, "shop", "lease") + `"`,
			api + " and " + other + " cannot run on one host: both listen on 127.0.0.1:19081",
			`    ` + api + `:5: probe.listen = "127.0.0.1:19081"`,
			`    ` + other + `:3: listen.http = "127.0.0.1:19081"`,
			"0 of 3 files invalid, 4 conflicts between them", // and api.toml's admin port is shop-b.toml's probe port
		} {
			if !strings.Contains(errs, want) {
				t.Errorf("stderr lacks %q:\n%s", want, errs)
			}
		}
	})

	t.Run("an invalid file among them", func(t *testing.T) {
		bad := writeFile(t, dir, "bad.toml", pairConfig("vm1", 20080, filepath.Join(dir, "bad"))+"[probe.nonsense]\n")
		code, out, errs := checkConfig(shop, bad, api)
		if code != 2 || !strings.Contains(errs, "bad.toml:12: probe.nonsense") || !strings.Contains(errs, "1 of 3 files invalid, 0 conflicts") ||
			!strings.Contains(out, "# "+api+" is valid") {
			t.Errorf("exit %d\n%s%s", code, out, errs)
		}
	})

	t.Run("one file named twice", func(t *testing.T) {
		code, _, errs := checkConfig(shop, "-config", filepath.Join(dir, ".", "shop.toml"))
		if code != 2 || !strings.Contains(errs, "is named twice") {
			t.Errorf("exit %d: %s", code, errs)
		}
	})

	t.Run("one file as an argument is the single-file form", func(t *testing.T) {
		code, out, errs := checkConfig(shop)
		if code != 0 || !strings.Contains(out, "is valid. Effective configuration") || !strings.Contains(out, "timing contract") {
			t.Errorf("exit %d\n%s%s", code, out, errs)
		}
	})
}

func TestParseConfigFiles(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		files   string
		offline bool
	}{
		{nil, "", false},
		{[]string{"-config", "a"}, "a", false},
		{[]string{"a", "b"}, "a b", false},
		{[]string{"-config", "a", "b", "-offline", "c"}, "a b c", true},
		{[]string{"b", "-config", "a"}, "a b", false}, // flags first, then arguments
		{[]string{"-offline", "--", "-odd-name.toml"}, "-odd-name.toml", true},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var l configList
		fs.Var(&l, "config", "")
		offline := fs.Bool("offline", false, "")
		files, err := parseConfigFiles(fs, tc.args, &l)
		if err != nil || strings.Join(files, " ") != tc.files || *offline != tc.offline {
			t.Errorf("%q: files %q offline %v err %v, want %q %v", tc.args, files, *offline, err, tc.files, tc.offline)
		}
	}
}
