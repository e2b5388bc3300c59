package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonproxy/baton/lease/history"
)

func TestPrintHistory(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var d history.Document
	d.Begin(1, "node-a", t0, history.StartAcquired)
	d.FailsafeStart(1, "node-a", t0.Add(time.Minute))
	d.FailsafeEnd(1, t0.Add(time.Minute), t0.Add(time.Minute+40*time.Second))
	d.End(1, "node-a", t0.Add(3*time.Minute+500*time.Millisecond), history.EndReleased+"step-down")
	d.Begin(2, "node-b", t0.Add(3*time.Minute+532*time.Millisecond), history.StartAcquired)
	d.Begin(3, "node-a", t0.Add(26*time.Hour), history.StartAcquired)
	d.End(4, "node-b", t0.Add(27*time.Hour), history.EndReleased+"at once")
	var b bytes.Buffer
	printHistory(&b, d.Entries, time.FixedZone("CET", 3600))
	want := `TERM  NODE    ACQUIRED                       ENDED                          DURATION  HOW
1     node-a  2026-03-01T13:00:00.000+01:00  2026-03-01T13:03:00.500+01:00  3m1s      acquired; released: step-down; failsafe 13:01:00 for 40s
2     node-b  2026-03-01T13:03:00.532+01:00  2026-03-02T15:00:00.000+01:00  25h57m    acquired; lost: expired or the node crashed (recorded by node-a)
3     node-a  2026-03-02T15:00:00.000+01:00  -                              -         acquired; unknown (superseded by term 4)
4     node-b  ?                              2026-03-02T16:00:00.000+01:00  ?         start not recorded; released: at once
`
	if got := b.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestFmtDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		32*time.Millisecond + 400*time.Microsecond: "32ms",
		4*time.Second + 64*time.Millisecond:        "4.1s",
		2*time.Minute + 59*time.Second + 600e6:     "3m0s",
		5*time.Hour + 3*time.Minute + 10e9:         "5h3m",
		75 * time.Hour:                             "3d3h",
		-time.Second:                               "?",
	} {
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestHistoryCommandErrors(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"history", "extra"}, &out, &errOut); code != exitUsage {
		t.Errorf("an extra argument: exit %d", code)
	}
	if code := run([]string{"history", "-config", filepath.Join(t.TempDir(), "none.toml")}, &out, &errOut); code != exitUsage {
		t.Errorf("a missing config: exit %d", code)
	}
	// A file lease whose history was never written: nothing recorded yet.
	dir := t.TempDir()
	cfg := filepath.Join(dir, "baton.toml")
	os.WriteFile(cfg, []byte(`node_name = "node-a"
[listen]
http = "127.0.0.1:8080"
[backend]
url = "http://127.0.0.1:1"
[lease]
backend = "file"
[lease.file]
path = "`+filepath.Join(dir, "lease.json")+`"
`), 0o600)
	out.Reset()
	errOut.Reset()
	if code := run([]string{"history", "-config", cfg}, &out, &errOut); code != exitOK || !strings.Contains(out.String(), "no terms recorded yet (file "+filepath.Join(dir, "lease.json.history")+")") {
		t.Errorf("empty history: exit %d, %q %q", code, out.String(), errOut.String())
	}
	os.WriteFile(filepath.Join(dir, "lease.json.history"), []byte("{broken"), 0o600)
	errOut.Reset()
	if code := run([]string{"history", "-config", cfg}, &out, &errOut); code != exitFailure || !strings.Contains(errOut.String(), "corrupt history") {
		t.Errorf("corrupt history: exit %d, %q", code, errOut.String())
	}
}
