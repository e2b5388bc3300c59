//go:build unix

package testproc

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStartKillsAStoppedProcessAtTheEnd(t *testing.T) {
	var p *Proc
	t.Run("inner", func(t *testing.T) {
		p = Start(t, "sleeper", Options{}, "/bin/sh", "-c", "echo started; exec sleep 60")
		p.Signal(syscall.SIGSTOP)
	})
	if !p.Exited() {
		t.Fatal("the process outlived the test that started it")
	}
	if got := p.Output(); got != "started\n" && got != "" { // stopped before or after the echo
		t.Errorf("output %q", got)
	}
}

func TestWaitReturnsTheExitCode(t *testing.T) {
	p := Start(t, "exit3", Options{Env: []string{"CODE=3"}}, "/bin/sh", "-c", `exit "$CODE"`)
	if code := p.Wait(t, 10*time.Second); code != 3 {
		t.Errorf("exit code %d, want 3", code)
	}
}

func TestStampedBuffer(t *testing.T) {
	b := &Buffer{stamp: true, bol: true}
	b.Write([]byte("one\ntw"))
	b.Write([]byte("o\nthree\n"))
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	want := []string{"one", "two", "three"}
	if len(lines) != len(want) {
		t.Fatalf("lines %q", lines)
	}
	for i, l := range lines {
		if len(l) < len(StampLayout)+1 {
			t.Fatalf("line %q has no stamp", l)
		}
		if _, err := time.ParseInLocation(StampLayout, l[:len(StampLayout)], time.Local); err != nil || l[len(StampLayout)+1:] != want[i] {
			t.Errorf("line %q: %v, want %q after the stamp", l, err, want[i])
		}
	}
}

func TestTailLines(t *testing.T) {
	if got := TailLines("a\nb\nc\n", 2); got != "...\nb\nc\n" {
		t.Errorf("TailLines = %q", got)
	}
	for _, s := range []string{"a\nb\n", "a\nb", ""} {
		if got := TailLines(s, 2); got != s {
			t.Errorf("TailLines(%q, 2) = %q", s, got)
		}
	}
}

func TestFreePortNeverRepeats(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		p := FreePort(t, "127.0.0.1")
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}
