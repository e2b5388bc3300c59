//go:build unix

package testproc

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StampLayout is the time prefix of a line of a stamped output.
const StampLayout = "2006-01-02 15:04:05.000"

// Build builds each package of targets (output name -> package path, as go
// build takes it from modDir) into outDir, without cgo.
func Build(modDir, outDir string, targets map[string]string) error {
	for out, pkg := range targets {
		cmd := exec.Command("go", "build", "-o", filepath.Join(outDir, out), pkg)
		cmd.Dir = modDir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build %s: %w", pkg, err)
		}
	}
	return nil
}

// BuildDemo builds baton and the demo app (demo/app) from the module at
// modDir into a new temporary folder, for a TestMain. remove deletes it.
func BuildDemo(modDir string) (dir string, remove func(), err error) {
	dir, err = os.MkdirTemp("", "baton-e2e-bin-")
	if err != nil {
		return "", nil, err
	}
	remove = func() { os.RemoveAll(dir) }
	if err := Build(modDir, dir, map[string]string{"baton": "./cmd/baton", "demoapp": "./demo/app"}); err != nil {
		remove()
		return "", nil, err
	}
	return dir, remove, nil
}

// Options are the optional settings of Start.
type Options struct {
	Env   []string // added to the test's environment
	Stamp bool     // prefix each output line with the wall-clock time it arrived
}

// Proc is a child process in its own process group.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	out  *Buffer
	done chan struct{}
}

// Start runs path with args. The process group is killed when t ends; if t
// failed, the last 300 lines of the output are logged.
func Start(t testing.TB, name string, o Options, path string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Name: name, out: &Buffer{stamp: o.Stamp, bol: true}, done: make(chan struct{})}
	p.Cmd = exec.Command(path, args...)
	p.Cmd.Env = append(os.Environ(), o.Env...)
	p.Cmd.Stdout, p.Cmd.Stderr = p.out, p.out
	p.Cmd.SysProcAttr = sysProcAttr()
	// A grandchild that keeps the output pipe open (one that left the
	// group) must not keep Wait, and so Kill and the test, waiting.
	p.Cmd.WaitDelay = 2 * time.Second
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.Cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		if !p.Kill() {
			t.Errorf("%s (pid %d) did not die within 5s of SIGKILL", name, p.Pid())
		}
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", name, TailLines(p.Output(), 300))
		}
	})
	return p
}

// Output is what the process wrote to stdout and stderr so far.
func (p *Proc) Output() string { return p.out.String() }

// Pid is the process's ID (also its process group's).
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Signal sends sig to the process itself (not its group).
func (p *Proc) Signal(sig syscall.Signal) { syscall.Kill(p.Pid(), sig) }

// Kill ends the whole process group, also when it is stopped, and waits (at
// most 5s) for the process to be reaped. It reports whether it was. Once
// the process has exited by itself the group is left alone: its ID may
// already belong to another process.
func (p *Proc) Kill() bool {
	if p.Exited() {
		return true
	}
	syscall.Kill(-p.Pid(), syscall.SIGKILL)
	syscall.Kill(-p.Pid(), syscall.SIGCONT)
	select {
	case <-p.done:
		return true
	case <-time.After(5 * time.Second):
		return false
	}
}

// Exited reports whether the process has exited and been reaped.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the process to exit and returns its exit code; the test
// fails if that takes longer than limit.
func (p *Proc) Wait(t testing.TB, limit time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.Cmd.ProcessState.ExitCode()
	case <-time.After(limit):
		t.Fatalf("%s did not exit within %s", p.Name, limit)
		return -1
	}
}

// Buffer is an output buffer safe for concurrent writes and reads.
type Buffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	stamp bool // prefix each line with the wall-clock time it arrived
	bol   bool // at the beginning of a line
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stamp {
		return s.b.Write(p)
	}
	now := time.Now().Format(StampLayout + " ")
	for _, line := range bytes.SplitAfter(p, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if s.bol {
			s.b.WriteString(now)
		}
		s.b.Write(line)
		s.bol = line[len(line)-1] == '\n'
	}
	return len(p), nil
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TailLines is the last n lines of s.
func TailLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1] // s ends with a newline
	}
	if len(lines) > n {
		lines = append([]string{"...\n"}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "")
}

// WaitSlowRequests waits (at most 5s) until the demo app at base (for
// example "http://127.0.0.1:8080") has n /slow requests waiting: the
// requests a drain test sent are in flight in the app, not just sent.
func WaitSlowRequests(t testing.TB, base string, n int) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := c.Get(fmt.Sprintf("%s/control/slow?min=%d&wait=5s", base, n))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if b, _ := io.ReadAll(res.Body); res.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s /slow requests waiting after 5s, want %d", base, strings.TrimSpace(string(b)), n)
	}
}

// FreePort is a TCP port that was free on ip when FreePort returned, and
// that no earlier FreePort call of this test binary returned: the kernel
// hands a just-closed port out again, so two calls in a row (a node's probe
// and admin ports) could otherwise get the same one.
func FreePort(t testing.TB, ip string) int {
	t.Helper()
	handed.mu.Lock()
	defer handed.mu.Unlock()
	var held []net.Listener // ports handed out before stay bound until one is new
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for range 100 {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
		port := l.Addr().(*net.TCPAddr).Port
		if !handed.ports[port] {
			handed.ports[port] = true
			return port
		}
	}
	t.Fatalf("no port on %s that was not handed out already", ip)
	return 0
}

var handed = struct {
	mu    sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}
