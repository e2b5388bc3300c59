// Package fsutil holds the file-system primitives that baton's on-disk
// state needs on every OS: a durable whole-file write, a non-blocking
// exclusive lock (flock on Unix, LockFileEx on Windows), and a whole-file
// read with a size bound for every file a configuration can name.
//
// WriteFile replaces a file so that a reader, or a process after a crash or
// a power cut, sees either the old content or the new, never a mix: a
// temporary file in the same directory, fsync, rename, fsync of the
// directory where the OS supports it. TryLock's lock is dropped by the OS
// when the file is closed or the process dies, however it dies.
package fsutil

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// WriteFile writes b to path durably and atomically with the given mode.
func WriteFile(path string, b []byte, mode os.FileMode) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(b); err != nil {
		return err
	}
	if err = tmp.Chmod(mode); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// Size limits for the files a configuration names, shared by the code that
// checks them at load and the code that uses them.
const (
	MaxPEMFile    = 1 << 20  // certificates, keys, CA bundles (the system bundle is ~200 KiB)
	MaxSecretFile = 64 << 10 // tokens, account keys, connection strings
)

// ErrTooLarge matches (errors.Is) ReadFileLimit's error for a file over its
// limit.
var ErrTooLarge = errors.New("file too large")

// TooLargeError is ReadFileLimit's error for a file over its limit.
type TooLargeError struct {
	Path  string
	Limit int64
}

func (e *TooLargeError) Error() string { return e.Path + ": larger than " + FormatSize(e.Limit) }

// Is makes errors.Is(err, ErrTooLarge) true.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// ReadFileLimit reads the whole file at path, like os.ReadFile, but refuses
// one larger than limit bytes with a *TooLargeError ("<path>: larger than
// 1 MiB"). It never reads more than limit+1 bytes, so a huge file or an
// endless one (/dev/zero, /dev/urandom) is refused at once instead of
// filling memory. Other errors are os.Open's or Read's, which name the path.
func ReadFileLimit(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > limit {
		return nil, &TooLargeError{Path: path, Limit: limit}
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, &TooLargeError{Path: path, Limit: limit}
	}
	return b, nil
}

// FormatSize renders a byte count for messages: "1 MiB", "64 KiB", or
// "1000 bytes" when it is not a whole number of KiB or MiB.
func FormatSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Lock takes the exclusive lock of TryLock on f, waiting until it gets it
// or ctx is done. OS file locks have no context support, so a non-blocking
// attempt is retried with a short, growing pause (up to 10 ms): a frozen
// holder of the lock cannot hang the caller past its deadline.
func Lock(ctx context.Context, f *os.File) error {
	pause := 500 * time.Microsecond
	for {
		got, err := TryLock(f)
		if err != nil || got {
			return err
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		pause = min(2*pause, 10*time.Millisecond)
	}
}
