//go:build linux

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stampLayout is the time prefix of a stamped output line.
const stampLayout = "2006-01-02 15:04:05.000"

// proc is a child process in its own process group. It dies with the test
// binary (Pdeathsig) and is killed at the end of its test, even a failed
// one, whose log then shows the process's output.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	stamp bool // prefix each line with the wall-clock time it arrived
	bol   bool // at the beginning of a line
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stamp {
		return s.b.Write(p)
	}
	now := time.Now().Format(stampLayout + " ")
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

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startProc runs path with args and extra environment variables.
func startProc(t *testing.T, name string, env []string, stamp bool, path string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, out: &syncBuffer{stamp: stamp, bol: true}, done: make(chan struct{})}
	p.cmd = exec.Command(path, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		if !p.kill() {
			t.Errorf("%s (pid %d) did not die within 5s of SIGKILL", name, p.cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", name, tailLines(p.out.String(), 200))
		}
	})
	return p
}

// bin returns the path of a binary TestMain built.
func bin(name string) string { return filepath.Join(binDir, name) }

func (p *proc) pid() int { return p.cmd.Process.Pid }

// signal sends sig to the process itself (not its group).
func (p *proc) signal(sig syscall.Signal) { syscall.Kill(p.pid(), sig) }

// kill ends the whole process group, also when it is stopped, and waits
// (at most 5s) for the process to be reaped.
func (p *proc) kill() bool {
	select {
	case <-p.done:
		return true
	default:
	}
	syscall.Kill(-p.pid(), syscall.SIGKILL)
	syscall.Kill(-p.pid(), syscall.SIGCONT)
	select {
	case <-p.done:
		return true
	case <-time.After(5 * time.Second):
		return false
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(limit):
		t.Fatalf("%s did not exit within %s", p.name, limit)
		return -1
	}
}

func tailLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		lines = append([]string{"...\n"}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "")
}
