package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzLoad checks that loading never panics, that every failure is made of
// *Error values that point somewhere (a key or a line), and that every
// accepted configuration survives Timing and a Redacted round trip.
func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.toml")
	files = append(files, "../baton.example.toml")
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(""))
	f.Add([]byte("[lease]\nbackend = \"file\"\n[health]\ncheck = [{name = \"a\", rise = \"x\"}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// A hang becomes a crash that names its input.
		wd := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("WATCHDOG %q", data)) })
		defer wd.Stop()
		c, err := testLoader().load(data, "fuzz.toml")
		if err != nil {
			if c != nil {
				t.Fatal("config returned with an error")
			}
			checkErrorTree(t, err)
			return
		}
		if c == nil {
			t.Fatal("nil config without an error")
		}
		_ = c.Timing().String()
		out := c.Redacted()
		c2, err := testLoader().load([]byte(out), "redacted.toml")
		if err != nil {
			t.Fatalf("redacted output does not load: %v\n--- input:\n%s\n--- redacted:\n%s", err, data, out)
		}
		if !strings.Contains(out, "REDACTED") {
			if d := diff(c2, c); d != "" {
				t.Fatalf("round trip changed the config: %s\n--- input:\n%s\n--- redacted:\n%s", d, data, out)
			}
		}
	})
}

func checkErrorTree(t *testing.T, err error) {
	t.Helper()
	switch e := err.(type) {
	case *Error:
		if e.Key == "" && e.Line <= 0 {
			t.Fatalf("error points nowhere: %#v", e)
		}
		if e.Msg == "" {
			t.Fatalf("error without a message: %#v", e)
		}
	case interface{ Unwrap() []error }:
		errs := e.Unwrap()
		if len(errs) < 2 {
			t.Fatalf("joined error with %d errors", len(errs))
		}
		for _, x := range errs {
			checkErrorTree(t, x)
		}
	default:
		t.Fatalf("error of type %T: %v", err, err)
	}
}
