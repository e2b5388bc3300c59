package config

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/batonproxy/baton/internal/fsutil"
)

func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "  s3cr3t-value\n")
	empty := write("empty", " \n\t")
	huge := write("huge", strings.Repeat("x", fsutil.MaxSecretFile+1))
	t.Setenv("BATON_TEST_SECRET", "\tenv-s3cr3t \n")
	t.Setenv("BATON_TEST_EMPTY", "  ")

	tests := []struct {
		name, env, file string
		want            string
		errHas          string
	}{
		{"env", "BATON_TEST_SECRET", "", "env-s3cr3t", ""},
		{"file", "", good, "s3cr3t-value", ""},
		{"env unset", "BATON_TEST_UNSET_VAR", "", "", "environment variable BATON_TEST_UNSET_VAR is not set"},
		{"env empty", "BATON_TEST_EMPTY", "", "", "environment variable BATON_TEST_EMPTY is empty"},
		{"file missing", "", filepath.Join(dir, "nope"), "", filepath.Join(dir, "nope")},
		{"file empty", "", empty, "", "file " + empty + " is empty"},
		{"file too large", "", huge, "", huge + ": larger than 64 KiB"},
		{"both", "BATON_TEST_SECRET", good, "", "use one"},
		{"neither", "", "", "", "no environment variable or file"},
		{"directory", "", dir, "", dir},
	}
	if runtime.GOOS != "windows" {
		tests = append(tests, struct {
			name, env, file string
			want            string
			errHas          string
		}{"endless file", "", "/dev/zero", "", "secret: /dev/zero: larger than 64 KiB"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadSecret(tt.env, tt.file)
			if tt.errHas == "" {
				if err != nil || got != tt.want {
					t.Fatalf("got %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("got %q, %v; want an error containing %q", got, err, tt.errHas)
			}
			if got != "" {
				t.Errorf("value %q returned with an error", got)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error leaks the secret: %v", err)
			}
		})
	}
}
