package history

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonproxy/baton/internal/fsutil"
)

// concurrentWriters runs writers goroutines, each with its own Store from
// open, each recording each terms of its own, and checks that none is lost.
func concurrentWriters(t *testing.T, open func() Store, writers, each int) Document {
	t.Helper()
	var wg sync.WaitGroup
	for w := range writers {
		s := open()
		wg.Go(func() {
			for i := range each {
				term := uint64(w*each + i + 1)
				err := s.Update(t.Context(), func(d *Document) {
					d.Begin(term, "node-"+strconv.Itoa(w), at(int(term)), StartAcquired)
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	d, err := open().Read(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Entries) != writers*each {
		t.Fatalf("%d entries after %d concurrent writes: updates were lost", len(d.Entries), writers*each)
	}
	for i, e := range d.Entries {
		if e.Term != uint64(i+1) || e.Node != "node-"+strconv.Itoa(i/each) {
			t.Fatalf("entry %d: %+v", i, e)
		}
	}
	return d
}

func TestFileStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	path := filepath.Join(dir, "lease.json"+Suffix)
	open := func() Store {
		f, err := NewFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	s := open()
	if d, err := s.Read(t.Context()); err != nil || len(d.Entries) != 0 || d.Version != Version {
		t.Fatalf("Read of a missing file: %+v, %v", d, err)
	}
	if !strings.Contains(s.String(), path) {
		t.Errorf("String() = %q", s)
	}

	t.Run("concurrent writers under the lock", func(t *testing.T) {
		concurrentWriters(t, open, 6, 20)
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o640 {
			t.Errorf("history file: %v, %v", fi, err)
		}
		if _, err := os.Stat(path + ".lock"); err != nil {
			t.Errorf("the history's own lock file: %v", err)
		}
	})

	t.Run("a held lock delays only until the deadline", func(t *testing.T) {
		lf, err := os.OpenFile(path+".lock", os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer lf.Close()
		if got, err := fsutil.TryLock(lf); !got || err != nil {
			t.Fatalf("TryLock: %v, %v", got, err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		t0 := time.Now()
		err = s.Update(ctx, func(*Document) { t.Error("fn called without the lock") })
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(t0) > time.Second {
			t.Errorf("Update with the lock held elsewhere: %v after %v", err, time.Since(t0))
		}
		// Reading needs no lock.
		if d, err := s.Read(t.Context()); err != nil || len(d.Entries) == 0 {
			t.Errorf("Read with the lock held elsewhere: %d entries, %v", len(d.Entries), err)
		}
		fsutil.Unlock(lf)
	})

	t.Run("corrupt file", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.history")
		os.WriteFile(bad, []byte("{oops"), 0o640)
		f, _ := NewFile(bad)
		if _, err := f.Read(t.Context()); err == nil || !strings.Contains(err.Error(), "remove it") {
			t.Errorf("Read: %v", err)
		}
		if err := f.Update(t.Context(), func(*Document) {}); err == nil {
			t.Error("Update of a corrupt file succeeded")
		}
		if b, _ := os.ReadFile(bad); string(b) != "{oops" {
			t.Errorf("a corrupt file was overwritten: %q", b)
		}
	})
}

// memBlob is a Blob in memory with a version counter; every Put is
// conditional, as Azure's If-Match and If-None-Match are.
type memBlob struct {
	mu      sync.Mutex
	data    []byte
	version int
	gets    int
	getHook func() // called at every Get after the read, unlocked
}

func (m *memBlob) Get(context.Context) ([]byte, string, error) {
	m.mu.Lock()
	m.gets++
	var (
		data    []byte
		version string
	)
	if m.version != 0 {
		data, version = append([]byte(nil), m.data...), strconv.Itoa(m.version)
	}
	m.mu.Unlock()
	if m.getHook != nil {
		m.getHook() // after the read, before the caller's Put
	}
	return data, version, nil
}

func (m *memBlob) Put(_ context.Context, data []byte, version string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := ""
	if m.version != 0 {
		cur = strconv.Itoa(m.version)
	}
	if version != cur {
		return fmt.Errorf("412 ConditionNotMet: %w", ErrConflict)
	}
	m.data = append([]byte(nil), data...)
	m.version++
	return nil
}

func (m *memBlob) String() string { return "memory" }

func TestConditionalStore(t *testing.T) {
	b := &memBlob{}
	var stores []*Conditional
	var mu sync.Mutex
	open := func() Store {
		c := NewConditional(b)
		mu.Lock()
		stores = append(stores, c)
		mu.Unlock()
		return c
	}
	concurrentWriters(t, open, 6, 20)
	var conflicts int64
	for _, c := range stores {
		conflicts += c.Conflicts()
	}
	t.Logf("%d conflicts retried", conflicts)

	// A forced conflict: another writer slips in between Get and Put.
	c := NewConditional(b)
	slipped := false
	b.getHook = func() {
		if !slipped {
			slipped = true
			if err := NewConditional(&memBlobView{b}).Update(t.Context(), func(d *Document) {
				d.Begin(1000, "other", at(1000), StartAcquired)
			}); err != nil {
				t.Error(err)
			}
		}
	}
	calls := 0
	if err := c.Update(t.Context(), func(d *Document) {
		calls++
		d.Begin(1001, "me", at(1001), StartAcquired)
	}); err != nil {
		t.Fatal(err)
	}
	b.getHook = nil
	d, _ := c.Read(t.Context())
	if calls != 2 || c.Conflicts() != 1 || d.find(1000) == nil || d.find(1001) == nil {
		t.Errorf("fn called %d times, %d conflicts, entries %s", calls, c.Conflicts(), summary(Document{Entries: d.Last(2)}))
	}

	// A document of a newer version is never overwritten.
	nb := &memBlob{}
	nb.Put(t.Context(), []byte(`{"version":2,"entries":[],"future":true}`), "")
	if err := NewConditional(nb).Update(t.Context(), func(*Document) {}); !errors.Is(err, ErrNewer) {
		t.Errorf("Update of a newer version: %v, want ErrNewer", err)
	}
	if d, err := NewConditional(nb).Read(t.Context()); err != nil || d.Version != 2 {
		t.Errorf("Read of a newer version: %+v, %v", d, err)
	}
}

// memBlobView is a memBlob without its Get hook (the slipping writer).
type memBlobView struct{ m *memBlob }

func (v *memBlobView) Get(ctx context.Context) ([]byte, string, error) {
	v.m.mu.Lock()
	defer v.m.mu.Unlock()
	if v.m.version == 0 {
		return nil, "", nil
	}
	return append([]byte(nil), v.m.data...), strconv.Itoa(v.m.version), nil
}
func (v *memBlobView) Put(ctx context.Context, data []byte, version string) error {
	return v.m.Put(ctx, data, version)
}
func (v *memBlobView) String() string { return "memory" }
