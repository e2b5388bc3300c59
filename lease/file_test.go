package lease

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable wall clock shared by FileLocks in one test.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newFileLocks returns n FileLocks on one lease file in a temporary
// directory, sharing a fake clock.
func newFileLocks(t *testing.T, n int) ([]*FileLock, *fakeClock, string) {
	t.Helper()
	clock := &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "lease.json")
	var locks []*FileLock
	for range n {
		l, err := NewFileLock(path)
		if err != nil {
			t.Fatal(err)
		}
		l.now = clock.now
		locks = append(locks, l)
	}
	return locks, clock, path
}

func readLeaseFile(t *testing.T, path string) fileLease {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var fl fileLease
	if err := json.Unmarshal(b, &fl); err != nil {
		t.Fatalf("lease file: %v\n%s", err, b)
	}
	return fl
}

func TestFileLockContention(t *testing.T) {
	locks, clock, path := newFileLocks(t, 2)
	a, b := locks[0], locks[1]
	ctx := t.Context()
	if a.LeaseID() == b.LeaseID() || a.LeaseID() == "" {
		t.Fatalf("lease IDs %q and %q", a.LeaseID(), b.LeaseID())
	}

	// Missing file: nobody, term 0.
	if rec, ok, err := a.Read(ctx); err != nil || ok || rec.Term != 0 {
		t.Fatalf("Read on a missing file = %+v, %v, %v", rec, ok, err)
	}
	rec, err := a.Acquire(ctx, Record{Holder: "a", AdvertiseURL: "http://a"}, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Holder != "a" || rec.AdvertiseURL != "http://a" || rec.Term != 1 || !rec.AcquiredAt.Equal(clock.now()) || !rec.Expires.Equal(clock.now().Add(15*time.Second)) {
		t.Errorf("acquired record %+v", rec)
	}
	fl := readLeaseFile(t, path)
	if fl.LeaseID != a.LeaseID() || fl.Term != 1 || fl.Holder != "a" {
		t.Errorf("lease file %+v", fl)
	}

	held, err := b.Acquire(ctx, Record{Holder: "b"}, 15*time.Second)
	if !errors.Is(err, ErrHeld) || held.Holder != "a" || held.Term != 1 {
		t.Errorf("b.Acquire = %+v, %v; want a's record and ErrHeld", held, err)
	}
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("error %v does not name the file", err)
	}
	if err := b.Renew(ctx, 15*time.Second); !errors.Is(err, ErrLost) {
		t.Errorf("b.Renew = %v, want ErrLost", err)
	}
	if err := b.Release(ctx); err != nil {
		t.Errorf("b.Release of a's lease = %v, want nil", err)
	}
	if rec, ok, err := b.Read(ctx); err != nil || !ok || rec.Holder != "a" {
		t.Errorf("b.Read = %+v, %v, %v", rec, ok, err)
	}

	// Renew moves the expiry.
	clock.advance(10 * time.Second)
	if err := a.Renew(ctx, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	clock.advance(10 * time.Second)
	if _, err := b.Acquire(ctx, Record{Holder: "b"}, 15*time.Second); !errors.Is(err, ErrHeld) {
		t.Errorf("b.Acquire of a renewed lease = %v, want ErrHeld", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestFileLockExpiry(t *testing.T) {
	locks, clock, _ := newFileLocks(t, 2)
	a, b := locks[0], locks[1]
	ctx := t.Context()
	if _, err := a.Acquire(ctx, Record{Holder: "a"}, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	clock.advance(15*time.Second - time.Nanosecond)
	if _, ok, _ := b.Read(ctx); !ok {
		t.Error("lease expired early")
	}
	clock.advance(time.Nanosecond)
	if _, ok, _ := b.Read(ctx); ok {
		t.Error("lease valid at its expiry")
	}
	// Renewing one's own expired lease works while nobody took it.
	if err := a.Renew(ctx, 15*time.Second); err != nil {
		t.Fatalf("renew of own expired lease: %v", err)
	}
	clock.advance(16 * time.Second)
	rec, err := b.Acquire(ctx, Record{Holder: "b"}, 15*time.Second)
	if err != nil || rec.Term != 2 || rec.Holder != "b" {
		t.Fatalf("b.Acquire after expiry = %+v, %v", rec, err)
	}
	if err := a.Renew(ctx, 15*time.Second); !errors.Is(err, ErrLost) {
		t.Errorf("a.Renew after b took over = %v, want ErrLost", err)
	}
	// Re-acquiring one's own lease is a new acquisition: next term.
	if rec, err := b.Acquire(ctx, Record{Holder: "b"}, 15*time.Second); err != nil || rec.Term != 3 {
		t.Errorf("b re-acquire = %+v, %v; want term 3", rec, err)
	}
}

func TestFileLockReleaseKeepsTerm(t *testing.T) {
	locks, _, path := newFileLocks(t, 2)
	a, b := locks[0], locks[1]
	ctx := t.Context()
	for i := range 3 {
		if _, err := a.Acquire(ctx, Record{Holder: "a"}, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := a.Release(ctx); err != nil {
			t.Fatal(err)
		}
		rec, ok, err := b.Read(ctx)
		if err != nil || ok || rec.Holder != "" || rec.Term != uint64(i+1) {
			t.Errorf("after release %d: Read = %+v, %v, %v", i, rec, ok, err)
		}
		if fl := readLeaseFile(t, path); fl.LeaseID != "" || !fl.Expires.IsZero() || fl.Term != uint64(i+1) {
			t.Errorf("lease file after release: %+v", fl)
		}
		if err := a.Renew(ctx, time.Minute); !errors.Is(err, ErrLost) {
			t.Errorf("Renew after Release = %v, want ErrLost", err)
		}
	}
	if rec, err := b.Acquire(ctx, Record{Holder: "b"}, time.Minute); err != nil || rec.Term != 4 {
		t.Errorf("b.Acquire after releases = %+v, %v; want term 4", rec, err)
	}
	if err := a.Release(ctx); err != nil {
		t.Errorf("releasing a lease not held = %v", err)
	}
}

func TestFileLockCorruptFile(t *testing.T) {
	tests := []struct {
		name    string
		content string
		wantErr bool
	}{
		{"garbage", "not json {", true},
		{"truncated", `{"holder": "a", "term": 3`, true},
		{"wrong type", `{"term": "three"}`, true},
		{"empty", "", false},
		{"too large", `{"term": 3}` + strings.Repeat(" ", 64<<10), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			locks, _, path := newFileLocks(t, 1)
			if err := os.WriteFile(path, []byte(tc.content), 0o640); err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			_, err := locks[0].Acquire(ctx, Record{Holder: "a"}, time.Minute)
			_, _, rerr := locks[0].Read(ctx)
			if !tc.wantErr {
				if err != nil || rerr != nil {
					t.Fatalf("Acquire = %v, Read = %v", err, rerr)
				}
				return
			}
			for _, err := range []error{err, rerr} {
				if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "corrupt") {
					t.Errorf("error %v: want ErrConfig naming %s as corrupt", err, path)
				}
			}
			// The corrupt file is left for the operator, not overwritten.
			if b, _ := os.ReadFile(path); string(b) != tc.content {
				t.Errorf("corrupt file rewritten: %q", b)
			}
		})
	}
}

func TestNewFileLock(t *testing.T) {
	if _, err := NewFileLock(""); err == nil {
		t.Error("empty path accepted")
	}
	dir := filepath.Join(t.TempDir(), "var", "lib", "baton")
	l, err := NewFileLock(filepath.Join(dir, "lease"))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatalf("parent directory not created: %v", err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o750 {
		t.Errorf("parent directory mode %v, want 0750", fi.Mode().Perm())
	}
	if !filepath.IsAbs(l.Path()) {
		t.Errorf("Path() = %q, want absolute", l.Path())
	}
	if _, err := l.Acquire(t.Context(), Record{Holder: "a"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(l.Path()); err != nil || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o640) {
		t.Errorf("lease file: %v, %v", fi, err)
	}
}

// TestFileLockHonoursContext holds the OS lock from another file handle and
// checks that a call gives up when its context ends.
func TestFileLockHonoursContext(t *testing.T) {
	locks, _, _ := newFileLocks(t, 1)
	l := locks[0]
	f, err := os.OpenFile(l.lockPath, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := lockFile(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := l.Acquire(ctx, Record{Holder: "a"}, time.Minute); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire with the file locked elsewhere = %v, want DeadlineExceeded", err)
	}
	if err := unlockFile(f); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Acquire(t.Context(), Record{Holder: "a"}, time.Minute); err != nil {
		t.Fatalf("Acquire after unlock: %v", err)
	}
	done, cancelDone := context.WithCancel(t.Context())
	cancelDone()
	if err := l.Renew(done, time.Minute); !errors.Is(err, context.Canceled) {
		t.Errorf("Renew with a done context = %v", err)
	}
}

// TestFileLockHandover: Change moves the lease to a proposed ID without
// freeing it, Adopt takes it under the adopter's own ID with the next term,
// ReleaseID releases only under the named ID; a restarted lock with the
// same ID resumes the lease.
func TestFileLockHandover(t *testing.T) {
	locks, clock, path := newFileLocks(t, 3)
	a, b, c := locks[0], locks[1], locks[2]
	ctx := t.Context()
	if _, err := a.Acquire(ctx, Record{Holder: "a"}, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := b.Change(ctx, "h"); !errors.Is(err, ErrLost) {
		t.Errorf("change by a non-holder: %v", err)
	}
	if err := a.Change(ctx, "h"); err != nil {
		t.Fatal(err)
	}
	if fl := readLeaseFile(t, path); fl.LeaseID != "h" || fl.Holder != "a" || fl.Term != 1 {
		t.Errorf("after change: %+v", fl)
	}
	if err := a.Renew(ctx, 15*time.Second); !errors.Is(err, ErrLost) {
		t.Errorf("old holder renews after the change: %v", err)
	}
	if _, err := c.Acquire(ctx, Record{Holder: "c"}, 15*time.Second); !errors.Is(err, ErrHeld) {
		t.Errorf("a third node acquired a changed lease: %v", err)
	}
	if _, err := b.Adopt(ctx, "wrong", Record{Holder: "b"}, 15*time.Second); !errors.Is(err, ErrLost) {
		t.Errorf("adopt from a wrong id: %v", err)
	}
	clock.advance(5 * time.Second)
	rec, err := b.Adopt(ctx, "h", Record{Holder: "b", AdvertiseURL: "http://b"}, 15*time.Second)
	if err != nil || rec.Holder != "b" || rec.Term != 2 || !rec.Expires.Equal(clock.now().Add(15*time.Second)) {
		t.Fatalf("adopt: %+v %v", rec, err)
	}
	if err := a.ReleaseID(ctx, "h"); err != nil {
		t.Fatal(err)
	}
	if fl := readLeaseFile(t, path); fl.LeaseID != b.LeaseID() {
		t.Errorf("a release under a stale id freed b's lease: %+v", fl)
	}
	// A restarted b with its predecessor's ID resumes the lease.
	b2, err := NewFileLock(path)
	if err != nil {
		t.Fatal(err)
	}
	b2.now = clock.now
	b2.SetLeaseID(b.LeaseID())
	rec, err = b2.Acquire(ctx, Record{Holder: "b"}, 15*time.Second)
	if err != nil || !rec.Resumed || rec.Term != 3 {
		t.Errorf("resume: %+v %v", rec, err)
	}
	if err := b2.ReleaseID(ctx, b2.LeaseID()); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := c.Read(ctx); ok {
		t.Error("still held after ReleaseID")
	}
}
