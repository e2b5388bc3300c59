package instance

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSecondAcquireIsRefusedWithPID(t *testing.T) {
	dir := t.TempDir()
	base := FileName("node-a", "file:/tmp/lease")
	l, err := Acquire(dir, base)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(dir, base)
	if !errors.Is(err, ErrRunning) {
		t.Fatalf("second acquire: %v, want ErrRunning", err)
	}
	if !strings.Contains(err.Error(), l.Path()) || !strings.Contains(err.Error(), "PID "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("error %q does not name the lock file and our PID", err)
	}
	// Another identity is independent.
	other, err := Acquire(dir, FileName("node-b", "file:/tmp/lease"))
	if err != nil {
		t.Fatalf("other identity: %v", err)
	}
	other.Close()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Acquire(dir, base)
	if err != nil {
		t.Fatalf("after close: %v", err)
	}
	again.Close()
}

func TestFileNameSeparatesIdentities(t *testing.T) {
	a := FileName("web/1", "azblob:https://x.blob.core.windows.net/baton/leader")
	b := FileName("web/1", "azblob:https://x.blob.core.windows.net/baton/other")
	c := FileName("web/2", "azblob:https://x.blob.core.windows.net/baton/leader")
	if a == b || a == c || strings.ContainsAny(a, `/\ `) {
		t.Fatalf("names %q %q %q", a, b, c)
	}
	if a != FileName("web/1", "azblob:https://x.blob.core.windows.net/baton/leader") {
		t.Fatal("not deterministic")
	}
}

func TestLeaseIDIsDurableAndRetired(t *testing.T) {
	dir := t.TempDir()
	base := FileName("n", "t")
	l, err := Acquire(dir, base)
	if err != nil {
		t.Fatal(err)
	}
	id, inherited, err := l.LeaseID()
	if err != nil || inherited || !isGUID(id) {
		t.Fatalf("first id %q inherited=%v err=%v", id, inherited, err)
	}
	onDisk, _ := os.ReadFile(filepath.Join(dir, base+".leaseid"))
	if strings.TrimSpace(string(onDisk)) != id {
		t.Fatalf("id on disk %q, want %q (written before use)", onDisk, id)
	}
	l.Close()

	// The next process inherits it.
	l2, err := Acquire(dir, base)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	id2, inherited, err := l2.LeaseID()
	if err != nil || !inherited || id2 != id {
		t.Fatalf("successor id %q inherited=%v err=%v, want %q inherited", id2, inherited, err, id)
	}
	next, err := l2.Retire(id2)
	if err != nil || next == id || !isGUID(next) {
		t.Fatalf("retire: %q %v", next, err)
	}
	if _, err := l2.Retire(id); err == nil {
		t.Fatal("retiring an id that is no longer current succeeded")
	}
	onDisk, _ = os.ReadFile(filepath.Join(dir, base+".leaseid"))
	if strings.TrimSpace(string(onDisk)) != next {
		t.Fatalf("after retire the file holds %q, want %q", onDisk, next)
	}
}

func TestGarbageIDFileIsReplaced(t *testing.T) {
	dir := t.TempDir()
	base := FileName("n", "t")
	os.WriteFile(filepath.Join(dir, base+".leaseid"), []byte("not-a-guid\n"), 0o600)
	l, err := Acquire(dir, base)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	id, inherited, err := l.LeaseID()
	if err != nil || inherited || !isGUID(id) {
		t.Fatalf("id %q inherited=%v err=%v", id, inherited, err)
	}
}

// TestKilledHolderFreesTheLock runs a child process that takes the lock,
// checks that it is refused to us with the child's PID, kills the child
// with SIGKILL and takes the lock.
func TestKilledHolderFreesTheLock(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("uses SIGKILL")
	}
	dir := t.TempDir()
	base := FileName("child", "t")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "INSTANCE_HELPER_DIR="+dir, "INSTANCE_HELPER_BASE="+base)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "locked") {
		t.Fatalf("child: %q %v", line, err)
	}
	_, err = Acquire(dir, base)
	if !errors.Is(err, ErrRunning) || !strings.Contains(err.Error(), "PID "+strconv.Itoa(cmd.Process.Pid)) {
		t.Fatalf("while the child holds it: %v", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	l, err := Acquire(dir, base)
	if err != nil {
		t.Fatalf("after kill -9: %v", err)
	}
	l.Close()
}

// TestMain doubles as the child process of TestKilledHolderFreesTheLock.
func TestMain(m *testing.M) {
	if dir := os.Getenv("INSTANCE_HELPER_DIR"); dir != "" {
		if _, err := Acquire(dir, os.Getenv("INSTANCE_HELPER_BASE")); err != nil {
			os.Stdout.WriteString("error " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Stdout.WriteString("locked\n")
		time.Sleep(time.Minute) // killed by the parent
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestHugeStateFiles: the state files are read with a bound; a lease ID
// file too large to hold an ID is replaced like any other garbage, and a
// lock file too large to hold a PID names none.
func TestHugeStateFiles(t *testing.T) {
	dir := t.TempDir()
	base := FileName("n", "t")
	huge := []byte(strings.Repeat(NewGUID()+"\n", 200)) // 7 KiB
	os.WriteFile(filepath.Join(dir, base+".leaseid"), huge, 0o600)
	l, err := Acquire(dir, base)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	id, inherited, err := l.LeaseID()
	if err != nil || inherited || !isGUID(id) {
		t.Fatalf("id %q inherited=%v err=%v", id, inherited, err)
	}
	lock := filepath.Join(t.TempDir(), "lock")
	os.WriteFile(lock, huge, 0o600)
	if got := readPID(lock); got != "unknown" {
		t.Errorf("readPID of a huge file: %q", got)
	}
	if runtime.GOOS != "windows" {
		if got := readPID("/dev/zero"); got != "unknown" {
			t.Errorf("readPID(/dev/zero): %q", got)
		}
	}
}
