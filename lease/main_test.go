package lease_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// A re-executed copy of this binary acting as one competing process of
	// TestFileLockProcesses.
	if path := os.Getenv(hammerEnv); path != "" {
		os.Exit(hammerChild(path))
	}
	goleak.VerifyTestMain(m)
}
