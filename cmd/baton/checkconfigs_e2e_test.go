//go:build unix

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batonproxy/baton/internal/azure/azuritetest"
)

// TestCheckConfigSeveralReadStorage: check-config with two azblob
// configurations for one host reads each lease once (as with one file),
// and refuses two that name the same blob before reading anything.
func TestCheckConfigSeveralReadStorage(t *testing.T) {
	skipShort(t)
	az := azuritetest.Start(t)
	t.Setenv("BATON_TEST_CS", az.ConnectionString())
	dir := t.TempDir()
	write := func(name string, blob string) string {
		n := &batonNode{http: freePort(t), probe: freePort(t), admin: freePort(t)}
		cfg := nodeConfig(name, n, nodeOpts{azurite: az.URL, backendPort: 8080, stateDir: filepath.Join(dir, "state")})
		if blob != "" {
			cfg = strings.Replace(cfg, "call_timeout = \"500ms\"\n", "call_timeout = \"500ms\"\nblob = \""+blob+"\"\n", 1)
		}
		p := filepath.Join(dir, name+".toml")
		os.WriteFile(p, []byte(cfg), 0o600)
		return p
	}
	shop, api, shop2 := write("shop", ""), write("api", "api"), write("shop2", "")

	var out, errb bytes.Buffer
	if code := run([]string{"check-config", shop, api}, &out, &errb); code != 0 ||
		strings.Count(out.String(), "lease storage reachable") != 2 {
		t.Errorf("check-config of two pairs: exit %d\n%s%s", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"check-config", shop, shop2}, &out, &errb); code != 2 ||
		!strings.Contains(errb.String(), "lease.azblob = "+az.URL+` container "baton" blob "leader"`) ||
		strings.Contains(out.String(), "lease storage reachable") {
		t.Errorf("check-config of two nodes of one pair: exit %d, want 2 naming the blob before any read\n%s%s", code, out.String(), errb.String())
	}
}
