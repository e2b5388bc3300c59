package config

import (
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func mustSize(t *testing.T, s string) int64 {
	t.Helper()
	n, err := parseSize(s)
	if err != nil {
		t.Fatalf("parseSize(%q): %v", s, err)
	}
	return n
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"off", 0},
		{" off ", 0},
		{"0MiB", 0},
		{"300000000", 300000000},
		{"100B", 100},
		{"64MiB", 64 << 20},
		{"64 MiB", 64 << 20},
		{"1GiB", 1 << 30},
		{"2TiB", 2 << 40},
		{"8KiB", 8 << 10},
		{"512MB", 512e6},
		{"1GB", 1e9},
		{"3KB", 3000},
		{"1TB", 1e12},
		{"8388607TiB", 8388607 << 40},
	}
	for _, tt := range tests {
		if got, err := parseSize(tt.in); err != nil || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "MiB", "1.5GiB", "-1", "+64MiB", "64mib", "64M", "64 megs", "1e9", "0x10", "Off", "none", "64MiB64"} {
		if n, err := parseSize(bad); err == nil || !strings.Contains(err.Error(), "is not a size") {
			t.Errorf("parseSize(%q) = %d, %v; want a not-a-size error", bad, n, err)
		}
	}
	for _, big := range []string{"8388608TiB", "9223372036854775808", "99999999999999999999B"} {
		if n, err := parseSize(big); err == nil || err.Error() != "is too large" {
			t.Errorf("parseSize(%q) = %d, %v; want too large", big, n, err)
		}
	}
	if n, err := parseSize("9223372036854775807"); err != nil || n != math.MaxInt64 {
		t.Errorf("max int64: %d %v", n, err)
	}
}

// TestRuntimeOrigins: the file wins, then a set GOGC / GOMEMLIMIT (the
// value is then left to the Go runtime), then baton's default.
func TestRuntimeOrigins(t *testing.T) {
	def := mustSize(t, DefaultMemoryLimit)
	tests := []struct {
		name                string
		runtime             string // body of [runtime]
		gogc, gomemlimit    string
		want                Runtime
		wantErr, wantErrKey string
	}{
		{name: "nothing set: defaults",
			want: Runtime{GCPercent: DefaultGCPercent, MemoryLimit: DefaultMemoryLimit, MemoryLimitBytes: def}},
		{name: "GOGC set: gc_percent left to the runtime", gogc: "200",
			want: Runtime{GCPercentFrom: OriginEnv, MemoryLimit: DefaultMemoryLimit, MemoryLimitBytes: def}},
		{name: "GOGC=off", gogc: "off",
			want: Runtime{GCPercentFrom: OriginEnv, MemoryLimit: DefaultMemoryLimit, MemoryLimitBytes: def}},
		{name: "GOMEMLIMIT set: memory_limit left to the runtime", gomemlimit: "1GiB",
			want: Runtime{GCPercent: DefaultGCPercent, MemoryLimitFrom: OriginEnv}},
		{name: "both set", gogc: "50", gomemlimit: "off",
			want: Runtime{GCPercentFrom: OriginEnv, MemoryLimitFrom: OriginEnv}},
		{name: "empty variables count as unset", gogc: "", gomemlimit: "",
			want: Runtime{GCPercent: DefaultGCPercent, MemoryLimit: DefaultMemoryLimit, MemoryLimitBytes: def}},
		{name: "the file wins over the environment", runtime: "gc_percent = 800\nmemory_limit = \"512MB\"\n", gogc: "200", gomemlimit: "1GiB",
			want: Runtime{GCPercent: 800, GCPercentFrom: OriginConfig, MemoryLimit: "512MB", MemoryLimitBytes: 512e6, MemoryLimitFrom: OriginConfig}},
		{name: "written default is from the file", runtime: "gc_percent = 400\nmemory_limit = \"0\"\n", gogc: "200",
			want: Runtime{GCPercent: 400, GCPercentFrom: OriginConfig, MemoryLimit: "0", MemoryLimitFrom: OriginConfig}},
		{name: "memory_limit off", runtime: "memory_limit = \"off\"\n",
			want: Runtime{GCPercent: DefaultGCPercent, MemoryLimit: "off", MemoryLimitFrom: OriginConfig}},
		{name: "empty memory_limit means not written", runtime: "memory_limit = \"\"\n", gomemlimit: "2GiB",
			want: Runtime{GCPercent: DefaultGCPercent, MemoryLimitFrom: OriginEnv}},
		{name: "GC off with a limit", runtime: "gc_percent = -1\nmemory_limit = \"64MiB\"\n",
			want: Runtime{GCPercent: -1, GCPercentFrom: OriginConfig, MemoryLimit: "64MiB", MemoryLimitBytes: 64 << 20, MemoryLimitFrom: OriginConfig}},
		{name: "GC off with the limit from GOMEMLIMIT", runtime: "gc_percent = -1\n", gomemlimit: "1GiB",
			want: Runtime{GCPercent: -1, GCPercentFrom: OriginConfig, MemoryLimitFrom: OriginEnv}},
		{name: "GC off with GOMEMLIMIT=off", runtime: "gc_percent = -1\n", gomemlimit: "off",
			wantErr: `-1 turns the proportional GC off and needs a memory limit, but GOMEMLIMIT is "off"`, wantErrKey: "runtime.gc_percent"},
		{name: "GC off without a limit", runtime: "gc_percent = -1\nmemory_limit = \"off\"\n",
			wantErr: `needs a memory limit, but memory_limit is "off" (no limit)`, wantErrKey: "runtime.gc_percent"},
		{name: "bad memory_limit is checked even if GOMEMLIMIT is set", runtime: "memory_limit = \"lots\"\n", gomemlimit: "1GiB",
			wantErr: `"lots" is not a size`, wantErrKey: "runtime.memory_limit"},
		{name: "bad gc_percent is checked even if GOGC is set", runtime: "gc_percent = 0\n", gogc: "100",
			wantErr: "0 is outside the allowed range 10..10000", wantErrKey: "runtime.gc_percent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GOGC", tt.gogc)
			t.Setenv("GOMEMLIMIT", tt.gomemlimit)
			doc := "node_name = \"n\"\n" + fileLease + "[listen]\nhttp = \"127.0.0.1:80\"\n[runtime]\n" + tt.runtime
			c, err := LoadBytes([]byte(doc), "test.toml")
			if tt.wantErr != "" {
				es := Errors(err)
				if len(es) != 1 || es[0].Key != tt.wantErrKey || es[0].Line == 0 || !strings.Contains(es[0].Msg, tt.wantErr) {
					t.Fatalf("got %v, want one error %s: %s", err, tt.wantErrKey, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := diff(c.Runtime, tt.want); d != "" {
				t.Errorf("%s\ngot  %+v\nwant %+v", d, c.Runtime, tt.want)
			}
		})
	}
}

// TestRedactedRuntime: keys the file did not write stay unwritten in the
// effective configuration (writing baton's default would override GOGC /
// GOMEMLIMIT when the output is used as a file), with a comment instead.
func TestRedactedRuntime(t *testing.T) {
	tests := []struct {
		name     string
		runtime  string
		env      map[string]string
		want     []string
		wantNot  []string
		gcOrigin Origin
	}{
		{"defaults", "", nil,
			[]string{"\n[runtime]\n# gc_percent = 400 (baton's default, as GOGC is not set)\n# memory_limit = \"0\" (baton's default, as GOMEMLIMIT is not set)\n"},
			[]string{"\ngc_percent =", "\nmemory_limit ="}, OriginDefault},
		{"environment", "", map[string]string{"GOGC": "150", "GOMEMLIMIT": "1GiB"},
			[]string{"# gc_percent: not set here; the Go runtime follows GOGC\n", "# memory_limit: not set here; the Go runtime follows GOMEMLIMIT\n"},
			[]string{"\ngc_percent =", "\nmemory_limit ="}, OriginEnv},
		{"file", "gc_percent = 250\nmemory_limit = \"1GiB\"\n", map[string]string{"GOGC": "150"},
			[]string{"\n[runtime]\ngc_percent = 250\nmemory_limit = \"1GiB\"\n"},
			[]string{"# gc_percent", "# memory_limit"}, OriginConfig},
	}
	// Replace the default constants in the expectations, which may change.
	for i := range tests {
		for j := range tests[i].want {
			tests[i].want[j] = strings.NewReplacer("= 400 (", "= "+strconv.Itoa(DefaultGCPercent)+" (",
				`"0" (baton's`, strconv.Quote(DefaultMemoryLimit)+" (baton's").Replace(tests[i].want[j])
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := testLoader()
			l.getenv = func(k string) string { return tt.env[k] }
			c, err := l.load([]byte(fileLease+"[runtime]\n"+tt.runtime), "x.toml")
			if err != nil {
				t.Fatal(err)
			}
			if c.Runtime.GCPercentFrom != tt.gcOrigin {
				t.Fatalf("gc_percent from %s, want %s", c.Runtime.GCPercentFrom, tt.gcOrigin)
			}
			out := c.Redacted()
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(out, w) {
					t.Errorf("output has %q", w)
				}
			}
			// Loaded back in the same environment, it is the same config.
			c2, err := l.load([]byte(out), "redacted.toml")
			if err != nil {
				t.Fatalf("redacted output does not load: %v\n%s", err, out)
			}
			if d := diff(c2, c); d != "" {
				t.Errorf("round trip changed the config: %s\n%s", d, out)
			}
			if t.Failed() {
				t.Logf("output:\n%s", out)
			}
		})
	}
}

func TestOriginString(t *testing.T) {
	for o, want := range map[Origin]string{OriginDefault: "default", OriginConfig: "config", OriginEnv: "env", 9: "origin(9)"} {
		if o.String() != want {
			t.Errorf("%d: %q, want %q", o, o.String(), want)
		}
	}
}

// TestExampleRuntimeDefaults: the commented-out [runtime] values of the
// shipped example are the defaults (the constants may change).
func TestExampleRuntimeDefaults(t *testing.T) {
	data, err := os.ReadFile("../baton.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for key, want := range map[string]string{
		"gc_percent":   strconv.Itoa(DefaultGCPercent),
		"memory_limit": strconv.Quote(DefaultMemoryLimit),
	} {
		m := regexp.MustCompile(`(?m)^# ` + key + `\s*=\s*(\S+)`).FindStringSubmatch(text)
		if m == nil || m[1] != want {
			t.Errorf("example shows %s as %v, want %s", key, m, want)
		}
	}
}
