package lease_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonproxy/baton/lease"
)

const (
	hammerEnv      = "BATON_LEASE_HAMMER_FILE"
	hammerNameEnv  = "BATON_LEASE_HAMMER_NAME"
	hammerWinsEnv  = "BATON_LEASE_HAMMER_WINS"
	hammerProcs    = 4
	hammerWins     = 25
	hammerTimeout  = 60 * time.Second
	hammerExitFail = 3
)

// hammerChild is one competing process: it acquires the lease wins times
// and, while holding it, claims an exclusive marker file that no other
// holder may see. It prints the term of each acquisition.
func hammerChild(path string) int {
	name := os.Getenv(hammerNameEnv)
	wins, err := strconv.Atoi(os.Getenv(hammerWinsEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad", hammerWinsEnv, err)
		return 2
	}
	l, err := lease.NewFileLock(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), hammerTimeout)
	defer cancel()
	marker := path + ".owner"
	for got := 0; got < wins; {
		if ctx.Err() != nil {
			fmt.Fprintf(os.Stderr, "%s: only %d of %d wins in %s\n", name, got, wins, hammerTimeout)
			return hammerExitFail
		}
		rec, err := l.Acquire(ctx, lease.Record{Holder: name}, time.Hour)
		if errors.Is(err, lease.ErrHeld) {
			if _, _, err := l.Read(ctx); err != nil {
				fmt.Fprintf(os.Stderr, "%s: read: %v\n", name, err)
				return hammerExitFail
			}
			continue
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: acquire: %v\n", name, err)
			return hammerExitFail
		}
		m, err := os.OpenFile(marker, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: VIOLATION: another holder inside the critical section at term %d: %v\n", name, rec.Term, err)
			return hammerExitFail
		}
		m.Close()
		fmt.Printf("term %d\n", rec.Term)
		if err := l.Renew(ctx, time.Hour); err != nil {
			fmt.Fprintf(os.Stderr, "%s: renew of a held lease: %v\n", name, err)
			return hammerExitFail
		}
		if err := os.Remove(marker); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
			return hammerExitFail
		}
		if err := l.Release(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "%s: release: %v\n", name, err)
			return hammerExitFail
		}
		got++
	}
	return 0
}

// TestFileLockProcesses runs several OS processes (this test binary,
// re-executed) that hammer Acquire/Renew/Release on one lease file, and
// checks mutual exclusion and that every acquisition got its own term, with
// no term skipped.
func TestFileLockProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lease.json")
	ctx, cancel := context.WithTimeout(t.Context(), hammerTimeout+10*time.Second)
	defer cancel()

	var (
		mu    sync.Mutex
		terms []uint64
		wg    sync.WaitGroup
	)
	for i := range hammerProcs {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(),
			hammerEnv+"="+path,
			fmt.Sprintf("%s=p%d", hammerNameEnv, i),
			fmt.Sprintf("%s=%d", hammerWinsEnv, hammerWins))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				var term uint64
				if _, err := fmt.Sscanf(sc.Text(), "term %d", &term); err != nil {
					t.Errorf("process %d: unexpected output %q", i, sc.Text())
					continue
				}
				mu.Lock()
				terms = append(terms, term)
				mu.Unlock()
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("process %d: %v\n%s", i, err, stderr.String())
				cancel() // the others may wait forever for a lease it kept
			}
		})
	}
	wg.Wait()

	slices.Sort(terms)
	if len(terms) != hammerProcs*hammerWins {
		t.Fatalf("%d acquisitions, want %d", len(terms), hammerProcs*hammerWins)
	}
	for i, term := range terms {
		if term != uint64(i+1) {
			t.Fatalf("terms are not 1..%d without gaps or repeats: position %d has %d", len(terms), i, term)
		}
	}
	l, err := lease.NewFileLock(path)
	if err != nil {
		t.Fatal(err)
	}
	rec, ok, err := l.Read(t.Context())
	if err != nil || ok || rec.Term != uint64(len(terms)) {
		t.Errorf("final lease: %+v, held %v, %v", rec, ok, err)
	}
}
