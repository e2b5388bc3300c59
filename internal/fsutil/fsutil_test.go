package fsutil

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestWriteFileReplacesWholeFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	for _, content := range []string{"first\n", "second, longer\n", ""} {
		if err := WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil || string(b) != content {
			t.Fatalf("read %q, %v; want %q", b, err, content)
		}
	}
	if fi, _ := os.Stat(path); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	if err := WriteFile(filepath.Join(t.TempDir(), "missing", "x"), nil, 0o600); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

func TestTryLockExcludesOtherOpenFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	open := func() *os.File {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	a, b := open(), open()
	if got, err := TryLock(a); !got || err != nil {
		t.Fatalf("first lock: %v %v", got, err)
	}
	if got, err := TryLock(b); got || err != nil {
		t.Fatalf("second lock while held: %v %v", got, err)
	}
	if err := Unlock(a); err != nil {
		t.Fatal(err)
	}
	if got, err := TryLock(b); !got || err != nil {
		t.Fatalf("lock after unlock: %v %v", got, err)
	}
	b.Close()
	if got, _ := TryLock(a); !got {
		t.Fatal("closing the holder did not drop its lock")
	}
}
