package fsutil

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
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

func TestReadFileLimit(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, n int) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, bytes.Repeat([]byte("x"), n), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, n := range []int{0, 1, 99, 100} {
		b, err := ReadFileLimit(write("ok", n), 100)
		if err != nil || len(b) != n {
			t.Errorf("%d bytes, limit 100: got %d bytes, %v", n, len(b), err)
		}
	}
	p := write("big", 101)
	b, err := ReadFileLimit(p, 100)
	if !errors.Is(err, ErrTooLarge) || b != nil {
		t.Fatalf("101 bytes, limit 100: got %d bytes, %v", len(b), err)
	}
	if want := p + ": larger than 100 bytes"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if _, err := ReadFileLimit(filepath.Join(dir, "missing"), 100); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestReadFileLimitEndlessFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no /dev/zero")
	}
	start := time.Now()
	_, err := ReadFileLimit("/dev/zero", 1<<20)
	if err == nil || err.Error() != "/dev/zero: larger than 1 MiB" || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{1 << 20: "1 MiB", 4 << 20: "4 MiB", 64 << 10: "64 KiB", 1536: "1536 bytes", 3 << 19: "1536 KiB", 0: "0 bytes"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}
