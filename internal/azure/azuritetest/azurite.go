// Package azuritetest starts Azurite, the Azure Storage emulator, for tests,
// and provides a TCP proxy with adjustable delay for slow-storage tests.
//
// Start runs azurite-blob from <module root>/.tools/azurite (installed by
// scripts/install-azurite.sh; BATON_AZURITE_BIN overrides the executable)
// on a free loopback port with its own data folder, waits until it answers,
// and stops it when the test ends, also when it fails. A missing Azurite
// fails the test: it is never skipped.
//
// What it does not guarantee: the free port is found by listening on :0 and
// closing, so another process could take it before Azurite binds it (Start
// then retries on another port; Restart, which must keep the port, fails
// the test). On Unix the whole process group is killed at the end; on
// Windows only the process itself.
package azuritetest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// The well-known development account of Azurite (public, documented by
// Microsoft; not a secret).
const (
	AccountName = "devstoreaccount1"
	AccountKey  = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// EnvBin names the environment variable that overrides the azurite-blob
// executable.
const EnvBin = "BATON_AZURITE_BIN"

const (
	readyTimeout = 30 * time.Second
	stopTimeout  = 5 * time.Second
	notInstalled = "azurite not installed: run scripts/install-azurite.sh (make test does this)"
)

// Azurite is one running azurite-blob process.
type Azurite struct {
	// URL is the blob endpoint: http://127.0.0.1:PORT/devstoreaccount1.
	URL string
	// Port is the blob port; it stays the same across Restart.
	Port int
	// Dir is the data folder (--location); LogPath the process's output.
	Dir     string
	LogPath string

	t   testing.TB
	bin string

	mu   sync.Mutex
	proc *process // nil while stopped
}

// Start starts Azurite for t and registers its stop with t.Cleanup.
func Start(t testing.TB) *Azurite {
	t.Helper()
	bin, err := findBin()
	if err != nil {
		t.Fatalf("%s (%v)", notInstalled, err)
	}
	dir := t.TempDir()
	a := &Azurite{t: t, bin: bin, Dir: filepath.Join(dir, "data"), LogPath: filepath.Join(dir, "azurite.log")}
	if err := os.MkdirAll(a.Dir, 0o755); err != nil {
		t.Fatalf("azurite data folder: %v", err)
	}
	t.Cleanup(func() {
		a.Stop()
		if t.Failed() {
			t.Logf("azurite log %s (tail):\n%s", a.LogPath, tail(a.LogPath, 4096))
		}
	})
	var lastErr error
	for range 3 {
		port, err := freePort()
		if err != nil {
			t.Fatalf("azurite: find a free port: %v", err)
		}
		if lastErr = a.start(port); lastErr == nil {
			return a
		}
	}
	t.Fatalf("start azurite: %v", lastErr)
	return nil
}

// Addr returns the blob endpoint's host:port (for a DelayProxy target).
func (a *Azurite) Addr() string { return "127.0.0.1:" + strconv.Itoa(a.Port) }

// ConnectionString returns a connection string for this Azurite.
func (a *Azurite) ConnectionString() string {
	return "DefaultEndpointsProtocol=http;AccountName=" + AccountName + ";AccountKey=" + AccountKey +
		";BlobEndpoint=" + a.URL + ";"
}

// Stop stops Azurite (SIGTERM to its process group, SIGKILL after 5 s) and
// waits for it. Stopping a stopped Azurite does nothing.
func (a *Azurite) Stop() {
	a.mu.Lock()
	p := a.proc
	a.proc = nil
	a.mu.Unlock()
	if p != nil {
		p.stop(stopTimeout)
	}
}

// Restart stops Azurite if it runs and starts it again on the same port with
// the same data folder: an outage of the storage service.
func (a *Azurite) Restart() {
	a.t.Helper()
	a.Stop()
	if err := a.start(a.Port); err != nil {
		a.t.Fatalf("restart azurite on port %d: %v", a.Port, err)
	}
}

func (a *Azurite) start(port int) error {
	logf, err := os.OpenFile(a.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own copy
	fmt.Fprintf(logf, "=== %s starting azurite-blob on port %d\n", time.Now().Format(time.RFC3339Nano), port)
	cmd := exec.Command(a.bin,
		"--blobHost", "127.0.0.1",
		"--blobPort", strconv.Itoa(port),
		"--location", a.Dir,
		"--skipApiVersionCheck",
		"--loose",
		"--disableTelemetry",
	)
	cmd.Dir = a.Dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", a.bin, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	url := fmt.Sprintf("http://127.0.0.1:%d/%s", port, AccountName)
	if err := waitReady(url, p.done); err != nil {
		p.stop(stopTimeout)
		return fmt.Errorf("%w; log: %s", err, tail(a.LogPath, 1024))
	}
	a.mu.Lock()
	a.proc, a.Port, a.URL = p, port, url
	a.mu.Unlock()
	return nil
}

// waitReady polls url until Azurite answers any HTTP status (an
// unauthenticated request gets 403), the process exits, or readyTimeout.
func waitReady(url string, exited <-chan struct{}) error {
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: time.Second}
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("azurite exited during start-up")
		default:
		}
		resp, err := c.Get(url + "?comp=list")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("azurite did not answer on %s within %v", url, readyTimeout)
}

type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func (p *process) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	terminate(p.cmd)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		kill(p.cmd)
		<-p.done
	}
}

// findBin returns the azurite-blob executable: $BATON_AZURITE_BIN, or the
// one scripts/install-azurite.sh put under the module root.
func findBin() (string, error) {
	if b := os.Getenv(EnvBin); b != "" {
		if _, err := os.Stat(b); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvBin, b, err)
		}
		return b, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	b := filepath.Join(root, ".tools", "azurite", "node_modules", ".bin", binName)
	if _, err := os.Stat(b); err != nil {
		return "", err
	}
	return b, nil
}

// moduleRoot walks up from the working directory (a package directory
// under go test) to the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}
