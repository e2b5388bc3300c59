package config

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testLoader is the real loader with a fixed host name and private IP and
// an empty environment, so results do not depend on the machine (GOGC or
// GOMEMLIMIT set by whoever runs the tests).
func testLoader() *loader {
	l := newLoader()
	l.hostname = func() (string, error) { return "test-host", nil }
	l.privateIP = func() (string, error) { return "10.1.2.3", nil }
	l.getenv = func(string) string { return "" }
	return l
}

func load(t *testing.T, doc string) (*Config, error) {
	t.Helper()
	return testLoader().load([]byte(doc), "test.toml")
}

func mustLoad(t *testing.T, doc string) *Config {
	t.Helper()
	c, err := load(t, doc)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return c
}

const fileLease = "[lease]\nbackend = \"file\"\n"

func TestGoodFiles(t *testing.T) {
	t.Setenv("BATON_TEST_CONNECTION_STRING", "UseDevelopmentStorage=true")
	files, _ := filepath.Glob("testdata/good/*.toml")
	if len(files) < 10 {
		t.Fatalf("found only %d good files", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := Load(f)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.Path != f {
				t.Errorf("Path = %q, want %q", c.Path, f)
			}
			if len(c.Health.Checks) == 0 {
				t.Error("no health checks after defaults")
			}
		})
	}
}

// want is one expected error of a bad file: "# want: LINE KEY: MSG".
type want struct {
	line int
	key  string
	msg  string
}

func parseWants(t *testing.T, data []byte) []want {
	t.Helper()
	var ws []want
	for _, l := range strings.Split(string(data), "\n") {
		rest, ok := strings.CutPrefix(l, "# want: ")
		if !ok {
			continue
		}
		lineS, rest, _ := strings.Cut(rest, " ")
		key, msg, ok := strings.Cut(rest, ": ")
		n, err := strconv.Atoi(lineS)
		if !ok || err != nil {
			t.Fatalf("bad want line %q", l)
		}
		ws = append(ws, want{n, key, msg})
	}
	if len(ws) == 0 {
		t.Fatal("bad file has no '# want:' line")
	}
	return ws
}

func TestBadFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.toml")
	if len(files) < 40 {
		t.Fatalf("found only %d bad files", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			wants := parseWants(t, data)
			c, err := testLoader().load(data, f)
			if err == nil {
				t.Fatalf("loaded without error: %+v", c)
			}
			if c != nil {
				t.Error("non-nil config with an error")
			}
			got := Errors(err)
			for _, w := range wants {
				found := false
				for _, e := range got {
					if e.Key == w.key && e.Line == w.line && strings.Contains(e.Msg, w.msg) {
						found = true
					}
				}
				if !found {
					t.Errorf("missing error %d %s: %s", w.line, w.key, w.msg)
				}
			}
			if len(got) != len(wants) {
				t.Errorf("got %d errors, want %d", len(got), len(wants))
			}
			for _, e := range got {
				if e.File != f {
					t.Errorf("error %q has File %q", e, e.File)
				}
				if strings.Contains(e.Error(), "SECRET") {
					t.Errorf("error leaks a secret: %q", e)
				}
			}
			if t.Failed() {
				t.Logf("got:\n%v", err)
			}
		})
	}
}

func (w want) String() string { return strconv.Itoa(w.line) + " " + w.key + ": " + w.msg }

// TestLeaseDurationBounds: Azure's 15s..60s binds the azblob backend only;
// the timing contract binds every backend.
func TestLeaseDurationBounds(t *testing.T) {
	const short = "duration = \"4s\"\nrenew_interval = \"1s\"\nrenew_deadline = \"3s\"\n"
	c := mustLoad(t, fileLease+short)
	if c.Lease.Duration.D() != 4*time.Second {
		t.Errorf("file lease duration = %v, want 4s", c.Lease.Duration)
	}
	mustLoad(t, fileLease+"duration = \"90s\"\n") // no upper bound either

	for _, tc := range []struct{ doc, key, msg string }{
		{"[lease]\nbackend = \"azblob\"\nduration = \"10s\"\n" +
			"[lease.azblob]\naccount_url = \"https://a.blob.core.windows.net\"\n",
			"lease.duration", "10s is outside the allowed range 15s..60s (Azure blob lease limits)"},
		{fileLease + "duration = \"4s\"\nrenew_interval = \"1s\"\nrenew_deadline = \"4s\"\n",
			"lease.renew_deadline", "must be less than lease.duration"},
		{fileLease + "duration = \"4s\"\nrenew_interval = \"2s\"\nrenew_deadline = \"3s\"\n",
			"lease.renew_deadline", "fewer than two renew attempts"},
		{fileLease + "duration = \"-4s\"\nrenew_interval = \"1s\"\nrenew_deadline = \"3s\"\n",
			"lease.duration", "must be positive"},
	} {
		_, err := load(t, tc.doc)
		found := false
		for _, e := range Errors(err) {
			found = found || e.Key == tc.key && strings.Contains(e.Msg, tc.msg)
		}
		if !found {
			t.Errorf("load(%q): %v; want %s: %s", tc.doc, err, tc.key, tc.msg)
		}
	}
}
