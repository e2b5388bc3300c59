//go:build windows

package instance

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// tryLock takes an exclusive LockFileEx lock without waiting. It locks one
// byte far past the end of the file, so that other processes can still read
// the PID written at its start (Windows byte-range locks are mandatory).
func tryLock(f *os.File) (bool, error) {
	ol := new(windows.Overlapped)
	ol.OffsetHigh = 1
	err := windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, windows.ERROR_LOCK_VIOLATION), errors.Is(err, windows.ERROR_IO_PENDING):
		return false, nil
	}
	return false, err
}

// syncDir is a no-op: Windows cannot open a directory for flushing, and
// MoveFileEx (os.Rename) replaces the file in one step.
func syncDir(string) error { return nil }
