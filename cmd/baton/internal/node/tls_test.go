package node

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"go.uber.org/zap"

	"github.com/batonproxy/baton/config"
)

// TestACMECARootIsReadWithABound: tls.acme.ca_root is read with a size
// bound, so a huge or endless file is an error, not a crash.
func TestACMECARootIsReadWithABound(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big.pem")
	if err := os.WriteFile(big, make([]byte, 1<<20+1), 0o600); err != nil {
		t.Fatal(err)
	}
	files := []string{big}
	if runtime.GOOS != "windows" {
		files = append(files, "/dev/zero")
	}
	for _, f := range files {
		cfg := &config.Config{}
		cfg.TLS.ACME = config.ACME{Domains: []string{"app.example.com"}, StoragePath: t.TempDir(), CARoot: f}
		_, err := newTLS(cfg, zap.NewNop())
		if want := "tls.acme.ca_root: " + f + ": larger than 1 MiB"; err == nil || err.Error() != want {
			t.Errorf("ca_root %s: %v, want %q", f, err, want)
		}
	}
}
