package node

import (
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/batonproxy/baton/config"
)

// gcPercent reads the GC percent in force (there is no getter: set and
// set back).
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func memoryLimit() int64 { return debug.SetMemoryLimit(-1) }

// keepRuntime restores the process's GC settings when the test ends: a
// node applies [runtime] to the whole test binary.
func keepRuntime(t *testing.T) {
	t.Helper()
	gc, limit := gcPercent(), memoryLimit()
	t.Cleanup(func() {
		debug.SetGCPercent(gc)
		debug.SetMemoryLimit(limit)
	})
}

func setRuntime(v runtimeValues) {
	debug.SetMemoryLimit(v.memoryLimit)
	debug.SetGCPercent(v.gcPercent)
}

func TestApplyRuntime(t *testing.T) {
	keepRuntime(t)
	none := int64(math.MaxInt64)
	base := runtimeValues{gcPercent: 150, memoryLimit: 2 << 30} // what GOGC / GOMEMLIMIT gave the process
	tests := []struct {
		name   string
		before runtimeValues
		r      config.Runtime
		want   runtimeValues
	}{
		{"defaults", runtimeValues{100, none},
			config.Runtime{GCPercent: 400, MemoryLimit: "0"},
			runtimeValues{400, none}},
		{"from the file", runtimeValues{100, none},
			config.Runtime{GCPercent: 250, GCPercentFrom: config.OriginConfig, MemoryLimit: "64MiB", MemoryLimitBytes: 64 << 20, MemoryLimitFrom: config.OriginConfig},
			runtimeValues{250, 64 << 20}},
		{"GC off with a limit", runtimeValues{400, none},
			config.Runtime{GCPercent: -1, GCPercentFrom: config.OriginConfig, MemoryLimit: "1GiB", MemoryLimitBytes: 1 << 30, MemoryLimitFrom: config.OriginConfig},
			runtimeValues{-1, 1 << 30}},
		{"GC back on, limit removed", runtimeValues{-1, 1 << 30},
			config.Runtime{GCPercent: 400, MemoryLimit: "0"},
			runtimeValues{400, none}},
		{"left to the environment: untouched", base,
			config.Runtime{GCPercentFrom: config.OriginEnv, MemoryLimitFrom: config.OriginEnv},
			base},
		{"left to the environment again after a file value", runtimeValues{800, 64 << 20},
			config.Runtime{GCPercentFrom: config.OriginEnv, MemoryLimitFrom: config.OriginEnv},
			base},
		{"mixed", runtimeValues{100, none},
			config.Runtime{GCPercentFrom: config.OriginEnv, MemoryLimit: "512MB", MemoryLimitBytes: 512e6, MemoryLimitFrom: config.OriginConfig},
			runtimeValues{150, 512e6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setRuntime(tt.before)
			st := applyRuntime(tt.r, base)
			got := runtimeValues{gcPercent(), memoryLimit()}
			if got != tt.want {
				t.Errorf("in force %+v, want %+v", got, tt.want)
			}
			if st.values != got {
				t.Errorf("reported %+v, in force %+v", st.values, got)
			}
			if st.gcFrom != tt.r.GCPercentFrom || st.limitFrom != tt.r.MemoryLimitFrom {
				t.Errorf("origins %s %s, want %s %s", st.gcFrom, st.limitFrom, tt.r.GCPercentFrom, tt.r.MemoryLimitFrom)
			}
			if cur := currentRuntime(); cur != got {
				t.Errorf("currentRuntime %+v, want %+v", cur, got)
			}
		})
	}
}

func TestFormatLimit(t *testing.T) {
	for in, want := range map[int64]string{
		math.MaxInt64: "none", 64 << 20: "64MiB", 1 << 30: "1GiB", 3 << 40: "3TiB",
		512e6: "512MB", 1e9: "1GB", 2e12: "2TB", 300000001: "300000001",
		1536 << 10: "1572864", // 1.5MiB: not a whole unit
	} {
		if got := formatLimit(in); got != want {
			t.Errorf("formatLimit(%d) = %q, want %q", in, got, want)
		}
	}
}

// TestRuntimeStartAndReload: the node applies [runtime] when it starts and
// on reload, logs the values with their origin, and logs again only when
// something changed. A key removed from the file while GOGC is set goes
// back to the value the process started with.
func TestRuntimeStartAndReload(t *testing.T) {
	keepRuntime(t)
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	setRuntime(runtimeValues{123, math.MaxInt64}) // as if GOGC=123 at process start
	dir := t.TempDir()
	a := startTestNode(t, "a", filepath.Join(dir, "lease"), "[runtime]\ngc_percent = 250\nmemory_limit = \"256MiB\"\n")
	logged := func() []map[string]any {
		var out []map[string]any
		for _, e := range a.logs.FilterMessage("runtime settings").All() {
			out = append(out, e.ContextMap())
		}
		return out
	}
	waitFor(t, "runtime settings logged", 5*time.Second, func() bool { return len(logged()) == 1 })
	if gc, limit := gcPercent(), memoryLimit(); gc != 250 || limit != 256<<20 {
		t.Fatalf("after start: gc %d, limit %d", gc, limit)
	}
	if l := logged()[0]; l["gc_percent"] != "250 (config)" || l["memory_limit"] != "256MiB (config)" {
		t.Errorf("start log %v", l)
	}

	// The keys removed: gc_percent goes to GOGC's value, memory_limit to
	// baton's default.
	orig, err := os.ReadFile(a.path)
	if err != nil {
		t.Fatal(err)
	}
	body, _, _ := strings.Cut(string(orig), "[runtime]")
	os.WriteFile(a.path, []byte(body), 0o600)
	t.Setenv("GOGC", "123")
	res, err := a.Reload()
	if err != nil || !slices.Contains(res.Applied, "runtime") {
		t.Fatalf("reload: %+v %v", res, err)
	}
	wantLimit := int64(math.MaxInt64)
	if b := a.live.Load().Runtime.MemoryLimitBytes; b != 0 {
		wantLimit = b // config.DefaultMemoryLimit is not "0"
	}
	if gc, limit := gcPercent(), memoryLimit(); gc != 123 || limit != wantLimit {
		t.Fatalf("after reload: gc %d, limit %d", gc, limit)
	}
	if ls := logged(); len(ls) != 2 || ls[1]["gc_percent"] != "123 (env)" || ls[1]["memory_limit"] != formatLimit(wantLimit)+" (default)" {
		t.Errorf("reload logs %v", ls)
	}

	// Nothing changed: no log line, not reported.
	res, err = a.Reload()
	if err != nil || slices.Contains(res.Applied, "runtime") {
		t.Fatalf("unchanged reload: %+v %v", res, err)
	}
	if n := len(logged()); n != 2 {
		t.Errorf("%d runtime log lines after an unchanged reload, want 2", n)
	}
}

// TestPprof: /debug/pprof/ exists only with admin.pprof (which follows
// reloads) and only for requests with the admin token.
func TestPprof(t *testing.T) {
	a := startTestNode(t, "a", filepath.Join(t.TempDir(), "lease"), "")
	admin := "http://" + a.Addr("admin.listen")
	get := func(method, path, token string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, admin+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, b
	}
	setPprof := func(on bool) {
		t.Helper()
		orig, _ := os.ReadFile(a.path)
		s := strings.Replace(string(orig), "[admin]\npprof = true\n", "[admin]\n", 1)
		if on {
			s = strings.Replace(s, "[admin]\n", "[admin]\npprof = true\n", 1)
		}
		os.WriteFile(a.path, []byte(s), 0o600)
		res, err := a.Reload()
		if err != nil || !slices.Contains(res.Applied, "admin.pprof") {
			t.Fatalf("reload with pprof %v: %+v %v", on, res, err)
		}
	}

	if code, _ := get("GET", "/debug/pprof/heap", "tok"); code != http.StatusNotFound {
		t.Fatalf("pprof off: %d, want 404", code)
	}
	setPprof(true)
	for _, c := range []struct {
		method, path, want string
	}{
		{"GET", "/debug/pprof/heap", ""},
		{"GET", "/debug/pprof/allocs", ""},
		{"GET", "/debug/pprof/goroutine?debug=1", "goroutine profile:"},
		{"GET", "/debug/pprof/", "Types of profiles available"},
		{"GET", "/debug/pprof/cmdline", ""},
		{"GET", "/debug/pprof/symbol", "num_symbols"},
		{"POST", "/debug/pprof/symbol", "num_symbols"},
		{"GET", "/debug/pprof/trace?seconds=0.05", ""},
		{"GET", "/debug/pprof/profile?seconds=1", ""},
	} {
		if code, _ := get(c.method, c.path, ""); code != http.StatusUnauthorized {
			t.Errorf("%s %s without a token: %d, want 401", c.method, c.path, code)
		}
		if code, _ := get(c.method, c.path, "nope"); code != http.StatusForbidden {
			t.Errorf("%s %s with a wrong token: %d, want 403", c.method, c.path, code)
		}
		code, body := get(c.method, c.path, "tok")
		if code != http.StatusOK || len(body) == 0 || !strings.Contains(string(body), c.want) {
			t.Errorf("%s %s with the token: %d, %d bytes, want 200 with %q", c.method, c.path, code, len(body), c.want)
		}
	}
	setPprof(false)
	if code, _ := get("GET", "/debug/pprof/heap", "tok"); code != http.StatusNotFound {
		t.Fatalf("pprof off again: %d, want 404", code)
	}
}
