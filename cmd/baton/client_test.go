package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAdminTokenFileIsReadWithABound: the client reads the token file with
// a size bound (64 KiB, as the node does) before any request.
func TestAdminTokenFileIsReadWithABound(t *testing.T) {
	big := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(big, []byte(strings.Repeat("x", 64<<10+1)), 0o600); err != nil {
		t.Fatal(err)
	}
	a := &adminFlags{url: "http://127.0.0.1:1", tokenFile: big}
	_, _, err := a.call("GET", "/status")
	if want := "admin token file " + big + ": " + big + ": larger than 64 KiB"; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}
