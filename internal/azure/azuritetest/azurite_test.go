package azuritetest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// get sends one request with its own transport (no idle connections left).
func get(t *testing.T, url string, timeout time.Duration) (int, error) {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func TestStartStopRestart(t *testing.T) {
	az := Start(t)
	if code, err := get(t, az.URL+"?comp=list", 5*time.Second); err != nil || code != http.StatusForbidden {
		t.Fatalf("unauthenticated list: %d, %v; want 403 from a running Azurite", code, err)
	}
	if want := "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + AccountKey + ";BlobEndpoint=" + az.URL + ";"; az.ConnectionString() != want {
		t.Errorf("ConnectionString() = %q", az.ConnectionString())
	}
	port := az.Port
	az.Stop()
	if _, err := get(t, az.URL, time.Second); err == nil {
		t.Fatal("Azurite still answers after Stop")
	}
	az.Stop() // idempotent
	az.Restart()
	if az.Port != port {
		t.Errorf("port after Restart = %d, want %d", az.Port, port)
	}
	if code, err := get(t, az.URL+"?comp=list", 5*time.Second); err != nil || code != http.StatusForbidden {
		t.Fatalf("after Restart: %d, %v", code, err)
	}
	if entries, err := os.ReadDir(az.Dir); err != nil || len(entries) == 0 {
		t.Errorf("data folder %s: %v, %d entries; want Azurite's files there", az.Dir, err, len(entries))
	}
	if _, err := os.Stat(filepath.Join(az.Dir, "..", "azurite.log")); err != nil {
		t.Errorf("log file: %v", err)
	}
}

func TestMissingAzuriteFails(t *testing.T) {
	t.Setenv(EnvBin, filepath.Join(t.TempDir(), "no-such-azurite"))
	ft := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(ft)
	}()
	<-done
	if ft.msg == "" || !strings.Contains(ft.msg, notInstalled) {
		t.Errorf("Start without Azurite: fatal %q, want it to say %q", ft.msg, notInstalled)
	}
}

// fatalTB records Fatalf and ends the goroutine like testing does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestDelayProxy(t *testing.T) {
	// An echo server behind the proxy.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echoDone := make(chan struct{})
	go func() {
		defer close(echoDone)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-echoDone })

	p := NewDelayProxy(t, ln.Addr().String())
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip := func(timeout time.Duration) (time.Duration, error) {
		start := time.Now()
		_ = c.SetDeadline(start.Add(timeout))
		if _, err := c.Write([]byte("ping")); err != nil {
			return 0, err
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil {
			return 0, err
		}
		if string(buf) != "ping" {
			t.Fatalf("echo = %q", buf)
		}
		return time.Since(start), nil
	}

	if d, err := roundTrip(time.Second); err != nil || d > 100*time.Millisecond {
		t.Fatalf("no delay: %v, %v", d, err)
	}
	p.SetDelay(150 * time.Millisecond)
	if d, err := roundTrip(2 * time.Second); err != nil || d < 300*time.Millisecond || d > 600*time.Millisecond {
		t.Errorf("150 ms each way: round trip %v, %v; want about 300 ms", d, err)
	}
	p.SetDelay(0)
	p.SetPaused(true)
	if _, err := roundTrip(300 * time.Millisecond); err == nil {
		t.Fatal("paused proxy forwarded data")
	}
	// The ping sent while paused is held; unpausing lets it through.
	p.SetPaused(false)
	_ = c.SetDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("held data after unpause: %q, %v", buf, err)
	}
	p.DropConns()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Read(buf); err == nil {
		t.Error("connection still open after DropConns")
	}
	c2, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	p.Close()
	_ = c2.SetDeadline(time.Now().Add(time.Second))
	if _, err := c2.Read(buf); err == nil {
		t.Error("connection still open after Close")
	}
}
