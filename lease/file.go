package lease

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/batonproxy/baton/internal/fsutil"
)

// FileLock is a Lock kept in a JSON file, for processes on ONE host (the
// demo and tests). It cannot coordinate machines: two hosts pointing at a
// network share would each see their own locking semantics and clock.
//
// Every operation takes an exclusive OS lock on the sidecar file path+".lock"
// (flock on Unix, LockFileEx on Windows), reads the lease file, decides,
// writes the new content atomically (temporary file in the same directory,
// fsync, rename) and unlocks. Expiry is a wall-clock time in the file:
// processes on one host share that clock.
type FileLock struct {
	path     string
	lockPath string
	id       atomic.Pointer[string] // this instance's lease ID
	now      func() time.Time       // wall clock; replaced in tests
}

var (
	_ Lock    = (*FileLock)(nil)
	_ Keyed   = (*FileLock)(nil)
	_ Changer = (*FileLock)(nil)
)

// fileLease is the content of the lease file.
type fileLease struct {
	Record
	// LeaseID is the random ID of the FileLock holding the lease; empty
	// when released.
	LeaseID string `json:"lease_id,omitempty"`
}

// NewFileLock returns a FileLock on the lease file at path, with a new
// random lease ID. It creates the parent directory (mode 0750) if missing.
// A missing lease file means nobody holds the lease and the term is 0.
func NewFileLock(path string) (*FileLock, error) {
	if path == "" {
		return nil, errors.New("new file lease: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("new file lease %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("new file lease %s: %w", abs, err)
	}
	l := &FileLock{
		path:     abs,
		lockPath: abs + ".lock",
		now:      time.Now,
	}
	l.SetLeaseID(rand.Text())
	return l, nil
}

// LeaseID implements Keyed.
func (l *FileLock) LeaseID() string { return *l.id.Load() }

// SetLeaseID implements Keyed: later calls use id. Any non-empty string is
// a valid ID for the file backend.
func (l *FileLock) SetLeaseID(id string) { l.id.Store(&id) }

// Path returns the absolute path of the lease file.
func (l *FileLock) Path() string { return l.path }

// Acquire implements Lock.
func (l *FileLock) Acquire(ctx context.Context, self Record, d time.Duration) (Record, error) {
	var out Record
	id := l.LeaseID()
	err := l.update(ctx, "acquire", func(cur fileLease, now time.Time) (*fileLease, error) {
		if cur.LeaseID != "" && cur.LeaseID != id && now.Before(cur.Expires) {
			out = cur.Record
			return nil, fmt.Errorf("%w (holder %q, term %d)", ErrHeld, cur.Holder, cur.Term)
		}
		next := granted(cur, id, self, now, d)
		out = next.Record
		out.Resumed = cur.LeaseID == id && now.Before(cur.Expires)
		return &next, nil
	})
	return out, err
}

// granted is the lease file after id took the lease from cur for d: self's
// holder record with the next term.
func granted(cur fileLease, id string, self Record, now time.Time, d time.Duration) fileLease {
	return fileLease{
		Record: Record{
			Holder:       self.Holder,
			AdvertiseURL: self.AdvertiseURL,
			Term:         cur.Term + 1,
			AcquiredAt:   now,
			Expires:      now.Add(d),
		},
		LeaseID: id,
	}
}

// Renew implements Lock. Renewing our own lease after its expiry succeeds
// if nobody else took it, as the Azure Blob service does.
func (l *FileLock) Renew(ctx context.Context, d time.Duration) error {
	id := l.LeaseID()
	return l.update(ctx, "renew", func(cur fileLease, now time.Time) (*fileLease, error) {
		if cur.LeaseID != id {
			return nil, ErrLost
		}
		cur.Expires = now.Add(d)
		return &cur, nil
	})
}

// Release implements Lock. It clears the holder and the expiry and keeps
// the term. Releasing a lease that is not ours does nothing.
func (l *FileLock) Release(ctx context.Context) error {
	return l.ReleaseID(ctx, l.LeaseID())
}

// ReleaseID implements Changer: it releases the lease if it is held under
// id.
func (l *FileLock) ReleaseID(ctx context.Context, id string) error {
	return l.update(ctx, "release", func(cur fileLease, _ time.Time) (*fileLease, error) {
		if cur.LeaseID != id || id == "" {
			return nil, nil
		}
		return &fileLease{Record: Record{Term: cur.Term}}, nil
	})
}

// Change implements Changer: the lease this lock holds (valid or not, as
// long as nobody else took it) is moved to the ID to, with its expiry and
// holder record unchanged.
func (l *FileLock) Change(ctx context.Context, to string) error {
	id := l.LeaseID()
	if to == "" || to == id {
		return fmt.Errorf("change lease file %s: proposed id must differ from ours and not be empty", l.path)
	}
	return l.update(ctx, "change", func(cur fileLease, _ time.Time) (*fileLease, error) {
		if cur.LeaseID != id {
			return nil, ErrLost
		}
		cur.LeaseID = to
		return &cur, nil
	})
}

// Adopt implements Changer: it takes the lease held under from (which must
// still be valid), moves it to this lock's ID, renews it for d and writes
// self's holder record with the next term.
func (l *FileLock) Adopt(ctx context.Context, from string, self Record, d time.Duration) (Record, error) {
	id := l.LeaseID()
	var out Record
	err := l.update(ctx, "adopt", func(cur fileLease, now time.Time) (*fileLease, error) {
		if from == "" || cur.LeaseID != from || !now.Before(cur.Expires) {
			return nil, ErrLost
		}
		next := granted(cur, id, self, now, d)
		out = next.Record
		return &next, nil
	})
	return out, err
}

// Read implements Lock.
func (l *FileLock) Read(ctx context.Context) (Record, bool, error) {
	var (
		rec Record
		ok  bool
	)
	err := l.update(ctx, "read", func(cur fileLease, now time.Time) (*fileLease, error) {
		rec = cur.Record
		ok = cur.LeaseID != "" && now.Before(cur.Expires)
		return nil, nil
	})
	return rec, ok, err
}

// update runs decide under the exclusive lock and writes what it returns
// (nil: no write). Errors name the operation and the file.
func (l *FileLock) update(ctx context.Context, op string, decide func(cur fileLease, now time.Time) (*fileLease, error)) error {
	if err := l.updateLocked(ctx, decide); err != nil {
		return fmt.Errorf("%s lease file %s: %w", op, l.path, err)
	}
	return nil
}

func (l *FileLock) updateLocked(ctx context.Context, decide func(cur fileLease, now time.Time) (*fileLease, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.OpenFile(l.lockPath, os.O_RDWR|os.O_CREATE, 0o640)
	if errors.Is(err, fs.ErrNotExist) {
		// The directory was removed after NewFileLock: make it again.
		if err = os.MkdirAll(filepath.Dir(l.path), 0o750); err == nil {
			f, err = os.OpenFile(l.lockPath, os.O_RDWR|os.O_CREATE, 0o640)
		}
	}
	if err != nil {
		return classify(err)
	}
	defer f.Close()
	if err := lockFile(ctx, f); err != nil {
		return fmt.Errorf("lock %s: %w", l.lockPath, classify(err))
	}
	defer func() { _ = unlockFile(f) }() // closing the file unlocks as well

	cur, err := l.load()
	if err != nil {
		return err
	}
	next, err := decide(cur, l.now().Round(0).UTC())
	if err != nil || next == nil {
		return err
	}
	// The caller's deadline is checked once more before the write: a write
	// is only useful if the caller still waits for its answer.
	if err := ctx.Err(); err != nil {
		return err
	}
	return l.store(next)
}

// maxLeaseFile bounds what load reads: a lease record is a few hundred
// bytes, and the path comes from the configuration (lease.file.path).
const maxLeaseFile = 64 << 10

// load reads the lease file. Missing or empty means nobody, term 0.
func (l *FileLock) load() (fileLease, error) {
	var cur fileLease
	b, err := fsutil.ReadFileLimit(l.path, maxLeaseFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return cur, nil
	case errors.Is(err, fsutil.ErrTooLarge):
		return cur, fmt.Errorf("%w: corrupt lease file (remove it to reset the lease): %v", ErrConfig, err)
	case err != nil:
		return cur, classify(err)
	case len(b) == 0:
		return cur, nil
	}
	if err := json.Unmarshal(b, &cur); err != nil {
		return fileLease{}, fmt.Errorf("%w: corrupt lease file (remove it to reset the lease): %v", ErrConfig, err)
	}
	return cur, nil
}

// store writes the lease file durably and atomically.
func (l *FileLock) store(next *fileLease) error {
	b, err := json.MarshalIndent(next, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFile(l.path, append(b, '\n'), 0o640); err != nil {
		return classify(err)
	}
	return nil
}

// classify marks errors that retrying cannot fix as ErrConfig.
func classify(err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return err
}
