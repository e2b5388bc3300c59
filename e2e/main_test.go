//go:build linux

package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/batonproxy/baton/internal/testproc"
)

// binDir holds bin/baton and bin/demoapp built from this tree by TestMain;
// haproxyBin is the haproxy executable ("" with haproxyErr set if none).
var (
	binDir     string
	haproxyBin string
	haproxyErr error
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	flag.Parse()
	if !testing.Short() {
		dir, remove, err := testproc.BuildDemo("..")
		if err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
			return 1
		}
		defer remove()
		binDir = dir
		haproxyBin, haproxyErr = findHAProxy()
		// The header of the table `make e2e` collects from the "E2E |"
		// lines; go test shows it only with -v or on failure.
		for line := range strings.SplitSeq(TableHeader, "\n") {
			fmt.Println("E2E " + line)
		}
	}
	code := m.Run()
	if code == 0 {
		// Every process waiter, load worker and proxy goroutine must be gone.
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: goroutines left behind: %v\n", err)
			return 1
		}
	}
	return code
}

// findHAProxy returns the haproxy executable: $BATON_HAPROXY_BIN, haproxy
// on PATH, or Debian's /usr/sbin/haproxy (not on a normal user's PATH).
func findHAProxy() (string, error) {
	if b := os.Getenv("BATON_HAPROXY_BIN"); b != "" {
		if _, err := os.Stat(b); err != nil {
			return "", fmt.Errorf("BATON_HAPROXY_BIN=%s: %w", b, err)
		}
		return b, nil
	}
	if b, err := exec.LookPath("haproxy"); err == nil {
		return b, nil
	}
	if _, err := os.Stat("/usr/sbin/haproxy"); err == nil {
		return "/usr/sbin/haproxy", nil
	}
	return "", fmt.Errorf("haproxy not installed: run scripts/install-haproxy.sh (make deps does this)")
}
