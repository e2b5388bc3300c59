// Package fsutil holds the two file-system primitives that baton's
// on-disk state needs on every OS: a durable whole-file write and a
// non-blocking exclusive lock (flock on Unix, LockFileEx on Windows).
//
// WriteFile replaces a file so that a reader, or a process after a crash or
// a power cut, sees either the old content or the new, never a mix: a
// temporary file in the same directory, fsync, rename, fsync of the
// directory where the OS supports it. TryLock's lock is dropped by the OS
// when the file is closed or the process dies, however it dies.
package fsutil

import (
	"os"
	"path/filepath"
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
