//go:build windows

package fsutil

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// lockOverlapped places the one locked byte: far past the end of any
// file baton locks, so that other processes can still read the file
// (Windows byte-range locks are mandatory).
var lockOverlapped = func() *windows.Overlapped { return &windows.Overlapped{OffsetHigh: 1} }

// TryLock takes an exclusive LockFileEx lock without waiting; got is false
// when another handle holds it.
func TryLock(f *os.File) (got bool, err error) {
	err = windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, lockOverlapped())
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, windows.ERROR_LOCK_VIOLATION), errors.Is(err, windows.ERROR_IO_PENDING):
		return false, nil
	}
	return false, err
}

// Unlock drops TryLock's lock (closing the file drops it too).
func Unlock(f *os.File) error {
	return windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, lockOverlapped())
}

// SyncDir is a no-op: Windows cannot open a directory for flushing, and
// MoveFileEx (os.Rename) replaces the file in one step.
func SyncDir(string) error { return nil }
