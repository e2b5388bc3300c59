//go:build linux

package e2e

import (
	"path/filepath"
	"testing"

	"github.com/batonproxy/baton/internal/testproc"
)

// proc is a child process in its own process group. It dies with the test
// binary and is killed at the end of its test, even a failed one, whose log
// then shows the process's output.
type proc = testproc.Proc

// stampLayout is the time prefix of a stamped output line.
const stampLayout = testproc.StampLayout

// startProc runs path with args and extra environment variables; stamp
// prefixes each output line with the time it arrived.
func startProc(t *testing.T, name string, env []string, stamp bool, path string, args ...string) *proc {
	t.Helper()
	return testproc.Start(t, name, testproc.Options{Env: env, Stamp: stamp}, path, args...)
}

// bin returns the path of a binary TestMain built.
func bin(name string) string { return filepath.Join(binDir, name) }

func freePort(t *testing.T, ip string) int { return testproc.FreePort(t, ip) }
