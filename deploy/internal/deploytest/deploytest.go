// Package deploytest is what the tests of deploy/ share: the baton binary
// they run (check-config on the generated configurations, a live node for
// the metric names) and the external tools they need (cloud-init,
// promtool), which the project's scripts install.
//
// It is test support: only _test.go files import it.
package deploytest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// RepoRoot is the repository's root, from this file's place in it.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Binary returns the path of a binary built once per test process from
// the package pkg of this module (e.g. "./cmd/baton"), named name.
// Cleanup removes them; call it from TestMain.
func Binary(t testing.TB, name, pkg string) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "baton-deploy-bin-")
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	mu.Lock()
	defer mu.Unlock()
	out := filepath.Join(binDir, name)
	if built[out] {
		return out
	}
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	built[out] = true
	return out
}

var (
	mu    sync.Mutex
	built = map[string]bool{}
)

// Cleanup removes the binaries Binary built.
func Cleanup() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

// Tool returns the path of an external tool, or skips the test naming the
// script that installs it (scripts/install-*.sh, run by `make deps`).
func Tool(t testing.TB, name, script string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed, so this check did not run: install it with %s (make deps does)", name, script)
	}
	return p
}

// Run runs a command and returns its combined output and exit code; it
// fails the test when the command cannot start.
func Run(t testing.TB, dir string, name string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	b, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return string(b), ee.ExitCode()
		}
		t.Fatalf("%s: %v", name, err)
	}
	return string(b), 0
}
