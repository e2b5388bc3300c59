//go:build unix

package healthcheck

import (
	"strings"
	"testing"
	"time"
)

func TestExecExitCodesAndOutput(t *testing.T) {
	tests := []struct {
		name   string
		argv   []string
		want   string // reason; "" = pass
		output string
	}{
		{"exit 0", []string{"sh", "-c", "exit 0"}, "", ""},
		{"stdout and stderr together", []string{"sh", "-c", "echo out; echo err >&2"}, "", "out\nerr\n"},
		{"exit 3 quotes the last line", []string{"sh", "-c", "echo checking; echo db down >&2; exit 3"}, "exit status 3: db down", "checking\ndb down\n"},
		{"exit 1 without output", []string{"sh", "-c", "exit 1"}, "exit status 1", ""},
		{"killed by a signal", []string{"sh", "-c", "kill -9 $$"}, "signal: killed", ""},
		{"not found", []string{"/nonexistent/check"}, "fork/exec /nonexistent/check: no such file or directory", ""},
		{"empty argv", nil, "exec: no command", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := checkWithin(t, NewExec(tt.argv), 10*time.Second)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Check: %v", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Fatalf("Check: %v, want %q", err, tt.want)
			}
			if out != tt.output {
				t.Fatalf("output %q, want %q", out, tt.output)
			}
		})
	}
}

func TestExecOutputIsTruncated(t *testing.T) {
	// 100 KiB of output: the command must not be stopped by it (no EPIPE), only the kept part.
	out, err := checkWithin(t, NewExec([]string{"sh", "-c", "yes abcdefg | head -c 102400; echo tail"}), 10*time.Second)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if len(out) != MaxOutputBytes {
		t.Fatalf("output is %d bytes, want %d", len(out), MaxOutputBytes)
	}
	if !strings.HasPrefix(out, "abcdefg\nabcdefg\n") || !strings.HasSuffix(out, truncatedMarker) {
		t.Fatalf("output %q...%q, want the start and the truncation marker", out[:16], out[len(out)-32:])
	}
}

func TestLastLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"one\n", "one"},
		{"one\ntwo\n\n  \n", "two"},
		{"  padded  ", "padded"},
		{"x\n" + strings.Repeat("é", 150), strings.Repeat("é", 100) + "..."},
		{"a\nb" + truncatedMarker, "b"},
	}
	for _, tt := range tests {
		if got := lastLine(tt.in); got != tt.want {
			t.Errorf("lastLine(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
