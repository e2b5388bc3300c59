package main

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
)

// TestHostTellsSystemd runs the Unix host against a fake NOTIFY_SOCKET and
// real signals to this process: READY=1 once the node serves,
// RELOADING=1/READY=1 around each SIGHUP reload (also a rejected one), and
// STOPPING=1 on SIGTERM, which takes the node's stop path.
func TestHostTellsSystemd(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)

	want := func(prefix string) {
		t.Helper()
		buf := make([]byte, 4096)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %q: %v", prefix, err)
		}
		if got := string(buf[:n]); !strings.HasPrefix(got, prefix) {
			t.Fatalf("notified %q, want %q...", got, prefix)
		}
	}
	f := newFakeRunner()
	errc := make(chan error, 1)
	h, _ := startHost(runFlags{}, os.Stderr)
	go func() { errc <- h.run(f, zaptest.NewLogger(t)) }()

	close(f.ready)
	want("READY=1\nSTATUS=serving")
	kill(t, syscall.SIGHUP)
	want("RELOADING=1")
	want("READY=1\nSTATUS=serving")
	<-f.reloads
	f.reloadErr = errors.New("invalid file")
	kill(t, syscall.SIGHUP)
	want("RELOADING=1")
	want("READY=1\nSTATUS=serving; the last reload was rejected")
	<-f.reloads
	kill(t, syscall.SIGTERM)
	want("STOPPING=1")
	close(f.release)
	if err := <-errc; err != nil {
		t.Fatalf("run: %v", err)
	}
	if code := h.stop(exitOK); code != exitOK {
		t.Fatalf("stop changed the exit code to %d", code)
	}
}

func kill(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), sig); err != nil {
		t.Fatal(err)
	}
}
