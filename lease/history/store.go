package history

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/batonproxy/baton/internal/fsutil"
)

// Store keeps a Document where every node of the pair reaches it (beside
// the lease). Both methods honour ctx.
type Store interface {
	// Read returns the stored document (empty when there is none yet).
	Read(ctx context.Context) (Document, error)
	// Update reads the document, applies fn and stores the result, so
	// that no concurrent Update of another writer is lost: fn may be
	// called again on a fresh copy when another writer came first.
	Update(ctx context.Context, fn func(*Document)) error
	// String names the storage for messages.
	String() string
}

// Suffix is appended to the lease's file or blob name to name its history.
const Suffix = ".history"

// File is a Store in a JSON file, for the file lease (processes on one
// host): every Update holds an exclusive OS lock on path+".lock" (never the
// lease file's own lock) and replaces the file atomically and durably.
type File struct {
	path     string
	lockPath string
}

var _ Store = (*File)(nil)

// NewFile returns the Store in the file at path. It touches nothing yet.
func NewFile(path string) (*File, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("history file %s: %w", path, err)
	}
	return &File{path: abs, lockPath: abs + ".lock"}, nil
}

func (f *File) String() string { return "file " + f.path }

// Read implements Store. It takes no lock: the file is replaced whole, so
// a reader sees the old or the new document.
func (f *File) Read(ctx context.Context) (Document, error) {
	if err := ctx.Err(); err != nil {
		return Document{}, err
	}
	return f.load()
}

func (f *File) load() (Document, error) {
	b, err := fsutil.ReadFileLimit(f.path, MaxSize)
	if errors.Is(err, fs.ErrNotExist) {
		return Document{Version: Version}, nil
	}
	if err != nil {
		return Document{}, fmt.Errorf("read history: %w", err)
	}
	d, err := Decode(b)
	if err != nil {
		return Document{}, fmt.Errorf("read history %s: %w", f.path, err)
	}
	return d, nil
}

// Update implements Store.
func (f *File) Update(ctx context.Context, fn func(*Document)) error {
	if err := f.update(ctx, fn); err != nil {
		return fmt.Errorf("update history %s: %w", f.path, err)
	}
	return nil
}

func (f *File) update(ctx context.Context, fn func(*Document)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(f.path), 0o750); err != nil {
		return err
	}
	lf, err := os.OpenFile(f.lockPath, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	defer lf.Close() // closing unlocks as well
	if err := fsutil.Lock(ctx, lf); err != nil {
		return fmt.Errorf("lock %s: %w", f.lockPath, err)
	}
	defer func() { _ = fsutil.Unlock(lf) }()
	d, err := f.load()
	if err != nil {
		return err
	}
	fn(&d)
	b, err := encode(&d)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return fsutil.WriteFile(f.path, b, 0o640)
}

// ErrConflict is what a Blob's Put returns (wrapped) when the stored
// document changed since the Get that returned version.
var ErrConflict = errors.New("history changed by another writer")

// Blob is storage with optimistic concurrency, such as an Azure blob with
// its ETag: what Conditional is built on.
type Blob interface {
	// Get returns the stored bytes and their version; version "" and no
	// data when nothing is stored yet.
	Get(ctx context.Context) (data []byte, version string, err error)
	// Put stores data only if the stored version is still version (with
	// version "": only if nothing is stored yet); otherwise it returns an
	// error wrapping ErrConflict.
	Put(ctx context.Context, data []byte, version string) error
	// String names the storage for messages.
	String() string
}

// Conditional is a Store on a Blob: Update reads the document and its
// version, applies fn and writes it back on condition that the version is
// unchanged, and on a conflict starts again (after a short random pause),
// until it succeeds, fails otherwise, or ctx ends.
type Conditional struct {
	b Blob
	// conflicts counts the writes another writer beat.
	conflicts atomic.Int64
}

var _ Store = (*Conditional)(nil)

// NewConditional returns the Store on b.
func NewConditional(b Blob) *Conditional { return &Conditional{b: b} }

func (c *Conditional) String() string { return c.b.String() }

// Conflicts returns how many writes of Update another writer beat (each
// one was retried).
func (c *Conditional) Conflicts() int64 { return c.conflicts.Load() }

// Read implements Store.
func (c *Conditional) Read(ctx context.Context) (Document, error) {
	data, _, err := c.b.Get(ctx)
	if err != nil {
		return Document{}, fmt.Errorf("read history %s: %w", c.b, err)
	}
	d, err := Decode(data)
	if err != nil {
		return Document{}, fmt.Errorf("read history %s: %w", c.b, err)
	}
	return d, nil
}

// Update implements Store.
func (c *Conditional) Update(ctx context.Context, fn func(*Document)) error {
	for {
		data, version, err := c.b.Get(ctx)
		if err != nil {
			return fmt.Errorf("update history %s: %w", c.b, err)
		}
		d, err := Decode(data)
		if err != nil {
			return fmt.Errorf("update history %s: %w", c.b, err)
		}
		fn(&d)
		b, err := encode(&d)
		if err != nil {
			return fmt.Errorf("update history %s: %w", c.b, err)
		}
		err = c.b.Put(ctx, b, version)
		if !errors.Is(err, ErrConflict) {
			if err != nil {
				return fmt.Errorf("update history %s: %w", c.b, err)
			}
			return nil
		}
		c.conflicts.Add(1)
		// Another writer came first: read its document and apply fn again,
		// after a pause that makes two writers unlikely to meet again.
		t := time.NewTimer(time.Duration(rand.Int64N(int64(20 * time.Millisecond))))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("update history %s: %w", c.b, ctx.Err())
		}
	}
}
