package healthcheck

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pidsIn parses the process IDs a test script printed, one per line.
func pidsIn(t *testing.T, out string, want int) []int {
	t.Helper()
	var pids []int
	for _, f := range strings.Fields(out) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("output %q: %v", out, err)
		}
		pids = append(pids, pid)
	}
	if len(pids) != want {
		t.Fatalf("output %q has %d pids, want %d", out, len(pids), want)
	}
	return pids
}

// gone reports whether pid has exited (absent, or a zombie waiting for its new parent).
func gone(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, os.ErrNotExist) {
		return true
	}
	// "pid (comm) S ...": the state follows the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	return err == nil && i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// requireGone fails unless every pid is gone within a bounded time: SIGKILL is delivered
// asynchronously.
func requireGone(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for !gone(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d is still running", pid)
			}
			time.Sleep(10 * time.Millisecond) // polling the kernel, bounded by deadline
		}
	}
}

func TestExecDeadlineKillsTheProcessAndItsChildren(t *testing.T) {
	// The shell starts two background children and waits for them; it writes their pids and
	// its own to a file, so the test knows them while the check still runs. The deadline is
	// made to pass once they are known: a fixed short timeout would be flaky on a loaded
	// machine, where starting the script can take longer than the timeout.
	pidFile := filepath.Join(t.TempDir(), "pids")
	script := `sleep 100 & echo $! >> "$1"; sleep 100 & echo $! >> "$1"; echo $$ >> "$1"; wait`
	c := NewExec([]string{"sh", "-c", script, "sh", pidFile})

	parent, expire := context.WithCancel(context.Background())
	defer expire()
	ctx := expiringCtx{parent}
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := c.Check(ctx)
		done <- result{out, err}
	}()
	var pids []int
	for limit := time.Now().Add(10 * time.Second); ; {
		if b, _ := os.ReadFile(pidFile); bytes.Count(b, []byte("\n")) == 3 {
			pids = pidsIn(t, string(b), 3)
			break
		}
		if time.Now().After(limit) {
			expire()
			<-done
			t.Fatal("the script did not start its children")
		}
		time.Sleep(10 * time.Millisecond) // waiting for the script, bounded by limit
	}
	for _, pid := range pids {
		if gone(pid) {
			t.Fatalf("process %d gone before the deadline", pid)
		}
	}
	expire()
	r := <-done
	if r.err == nil || r.err.Error() != "timeout" || !errors.Is(r.err, context.DeadlineExceeded) {
		t.Fatalf("Check: %v, want a timeout", r.err)
	}
	requireGone(t, pids)
}

// expiringCtx reports DeadlineExceeded once its parent is cancelled: a deadline the test can
// make pass at the moment it chooses.
type expiringCtx struct{ context.Context }

func (c expiringCtx) Err() error {
	if c.Context.Err() != nil {
		return context.DeadlineExceeded
	}
	return nil
}

func TestExecTimeoutReason(t *testing.T) {
	start := time.Now()
	_, err := checkWithin(t, NewExec([]string{"sleep", "100"}), 300*time.Millisecond)
	if err == nil || err.Error() != "timeout after 300ms" {
		t.Fatalf("Check: %v, want timeout after 300ms", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Check returned after %s", d)
	}
}

func TestExecSuccessKillsLeftoverChildren(t *testing.T) {
	// The background child keeps the output pipe open. Unless Check kills it when the shell
	// exits, Wait waits for the pipe until WaitDelay (raised here to 20s, above the 9s allowed
	// below: once the shell is reaped, the context no longer kills anything) and the sleep
	// outlives the check.
	c := NewExec([]string{"sh", "-c", `sleep 1000 & echo $!`}).(*execChecker)
	c.waitDelay = 20 * time.Second
	start := time.Now()
	out, err := checkWithin(t, c, 10*time.Second)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if d := time.Since(start); d > 9*time.Second {
		t.Fatalf("Check took %s: it waited for the leftover child", d)
	}
	requireGone(t, pidsIn(t, out, 1))
}
