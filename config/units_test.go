package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

func TestDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		str  string
	}{
		{"15s", 15 * time.Second, "15s"},
		{" 1m ", time.Minute, "1m"},
		{"1h", time.Hour, "1h"},
		{"90m", 90 * time.Minute, "1h30m"},
		{"1m30s", 90 * time.Second, "1m30s"},
		{"250ms", 250 * time.Millisecond, "250ms"},
		{"-1s", -time.Second, "-1s"},
		{"0", 0, "0s"},
	}
	for _, tt := range tests {
		var d Duration
		if err := d.UnmarshalText([]byte(tt.in)); err != nil || d.D() != tt.want || d.String() != tt.str {
			t.Errorf("%q: got %v (%s), %v; want %v (%s)", tt.in, d.D(), d, err, tt.want, tt.str)
		}
		b, _ := d.MarshalText()
		var back Duration
		if err := back.UnmarshalText(b); err != nil || back != d {
			t.Errorf("%q: MarshalText %q does not round-trip", tt.in, b)
		}
	}
	for _, bad := range []string{"15", "", "fast", "1x"} {
		var d Duration
		if err := d.UnmarshalText([]byte(bad)); err == nil || !strings.Contains(err.Error(), "invalid duration") {
			t.Errorf("%q: got %v", bad, err)
		}
	}
}

func TestStatusRange(t *testing.T) {
	tests := []struct {
		in   string
		want StatusRange
		str  string
	}{
		{"200", StatusRange{200, 200}, "200"},
		{"2xx", StatusRange{200, 299}, "200-299"},
		{"5XX", StatusRange{500, 599}, "500-599"},
		{"200-399", StatusRange{200, 399}, "200-399"},
		{" 301 - 302 ", StatusRange{301, 302}, "301-302"},
	}
	for _, tt := range tests {
		var r StatusRange
		if err := r.UnmarshalText([]byte(tt.in)); err != nil || r != tt.want || r.String() != tt.str {
			t.Errorf("%q: got %v, %v", tt.in, r, err)
		}
	}
	for _, bad := range []string{"", "600", "99", "6xx", "0xx", "2yy", "300-200", "200-", "abc", "+20", "2000", "200-299-300"} {
		var r StatusRange
		if err := r.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q: accepted as %v", bad, r)
		}
	}
	r := StatusRange{200, 399}
	if !r.Contains(200) || !r.Contains(399) || r.Contains(400) || r.Contains(199) {
		t.Error("Contains is wrong")
	}
	// Integers and strings mix in one TOML array.
	var v struct {
		S []StatusRange `toml:"s"`
	}
	if _, err := toml.Decode(`s = [204, "3xx", "400-404"]`, &v); err != nil || fmt.Sprint(v.S) != "[204 300-399 400-404]" {
		t.Errorf("decode: %v %v", v.S, err)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "baton.toml", Line: 12, Key: "lease.renew_deadline", Msg: "bad"}, "baton.toml:12: lease.renew_deadline: bad"},
		{Error{File: "baton.toml", Key: "lease.renew_deadline", Msg: "bad"}, "baton.toml: lease.renew_deadline: bad"},
		{Error{Line: 3, Key: "k", Msg: "bad"}, "line 3: k: bad"},
		{Error{File: "f", Msg: "bad"}, "f: bad"},
		{Error{Msg: "bad"}, "bad"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

func TestErrors(t *testing.T) {
	a, b, c := &Error{Msg: "a"}, &Error{Msg: "b"}, &Error{Msg: "c"}
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{a, 1},
		{errors.Join(a, b), 2},
		{errors.Join(a, errors.Join(b, c)), 3},
		{fmt.Errorf("load: %w", a), 1},
		{errors.New("other"), 0},
	}
	for _, tt := range tests {
		if got := Errors(tt.err); len(got) != tt.want {
			t.Errorf("Errors(%v) = %d errors, want %d", tt.err, len(got), tt.want)
		}
	}
	if joinErrors(nil) != nil || joinErrors([]*Error{a}) != error(a) {
		t.Error("joinErrors")
	}
}

func TestLocator(t *testing.T) {
	doc := `# comment [not.a.table]
node_name = "x" # trailing
'quoted key' = 1
[lease] # comment
backend = """
multi = 1
[fake]
"""
duration = '''
x'''''
azblob.account_url = "a\"b = c"
[lease.azblob]
auth = "default"
[[health.check]]
name = "a"
when = 1979-05-27 07:32:00Z
after = 1
[health.check.headers]
X = "1"
[[health.check]]
name = "b"
command = [
  "sh", # comment ]
  "-c",
]
[health]
more = [{ a = 1 }, { b = { c = 2 } }]
"dotted"."key" = { x = [1, 2], y = "}" }
`
	l := locate([]byte(doc))
	tests := []struct {
		key  string
		line int
	}{
		{"node_name", 2},
		{`"quoted key"`, 3},
		{"lease", 4},
		{"lease.backend", 5},
		{"lease.duration", 9},
		{"lease.azblob.account_url", 11},
		{"lease.azblob.auth", 13},
		{"lease.azblob.container", 12}, // not written: its table
		{"lease.renew_deadline", 4},    // not written: its table
		{"health.check[0]", 14},
		{"health.check", 14},
		{"health.check[0].name", 15},
		{"health.check[0].after", 17},
		{"health.check[0].headers.X", 19},
		{"health.check[1].name", 21},
		{"health.check[1].command", 22},
		{"health.check[1].rise", 20},
		{"health.more[1].b.c", 27},
		{"health.dotted.key.y", 28},
		{"fake", 0},
		{"multi", 0},
		{"nothing.here", 0},
	}
	for _, tt := range tests {
		if got := l.line(tt.key); got != tt.line {
			t.Errorf("line(%s) = %d, want %d", tt.key, got, tt.line)
		}
	}
	if e, ok := l.nth([]string{"health", "check", "name"}, 1); !ok || e.key != "health.check[1].name" || e.line != 21 {
		t.Errorf("nth: %+v %v", e, ok)
	}
	if _, ok := l.nth([]string{"health", "check", "name"}, 2); ok {
		t.Error("nth beyond the end")
	}
	// The real parser accepts the document, so the scanner saw valid TOML.
	var v map[string]any
	if _, err := toml.Decode(doc, &v); err != nil {
		t.Fatal(err)
	}
}
