package healthcheck

import (
	"context"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"
)

// MaxOutputBytes bounds the output (stdout and stderr together) an exec check keeps.
const MaxOutputBytes = 4 << 10

// truncatedMarker ends an output that was cut at MaxOutputBytes.
const truncatedMarker = "\n[output truncated]"

// execWaitDelay bounds how long Check waits for the output pipes to close once the command
// exited or was killed (a descendant that escaped the process tree may hold them open).
const execWaitDelay = 500 * time.Millisecond

// reasonLineBytes bounds the part of the output quoted in a failure reason.
const reasonLineBytes = 200

type execChecker struct {
	argv      []string
	waitDelay time.Duration // execWaitDelay; tests raise it to prove it is not waited for
}

// NewExec returns a check that runs argv (no shell) and passes when it exits with status 0.
// At the check's deadline the command is killed together with its descendants (Unix: the
// process group, SIGKILL; Windows: a job object, or the process alone if the job cannot be
// set up). On Linux, descendants still running when the command exits are killed too. Stdout
// and stderr are captured together, truncated to MaxOutputBytes. An empty argv fails at Check
// time.
func NewExec(argv []string) Checker {
	return &execChecker{argv: slices.Clone(argv), waitDelay: execWaitDelay}
}

func (c *execChecker) Type() string { return "exec" }

// Check runs the command. A failure reads "exit status 3: <last line of output>" or
// "timeout after 1s".
func (c *execChecker) Check(ctx context.Context) (string, error) {
	if len(c.argv) == 0 || c.argv[0] == "" {
		return "", failf(nil, "exec: no command")
	}
	start := time.Now()
	out := &cappedBuffer{limit: MaxOutputBytes}
	cmd := exec.CommandContext(ctx, c.argv[0], c.argv[1:]...)
	cmd.Stdout = out
	cmd.Stderr = out // the same writer: exec shares one pipe, so the order is kept
	cmd.WaitDelay = c.waitDelay
	tree := &procTree{}
	tree.prepare(cmd)
	cmd.Cancel = func() error { return tree.kill(cmd) }
	if err := cmd.Start(); err != nil {
		return "", failf(err, "%v", err)
	}
	tree.started(cmd)
	if tree.waitExit(cmd) {
		// The command has exited but is not reaped yet, so its process ID cannot have been
		// reused: kill what it left behind before Wait releases the ID.
		tree.killRest(cmd)
	}
	err := cmd.Wait()
	tree.release()
	output := out.String()

	switch {
	case err == nil:
		return output, nil
	case cmd.ProcessState != nil && cmd.ProcessState.Success():
		// The command exited 0; Wait complains only about what came after (ErrWaitDelay: a
		// descendant kept the output pipe open; or the deadline passing in that moment).
		return output, nil
	case ctx.Err() != nil:
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return output, failf(ctx.Err(), "%s", timeoutReason(ctx, start))
		}
		return output, failf(ctx.Err(), "canceled")
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		if line := lastLine(output); line != "" {
			return output, failf(err, "%s: %s", exitErr.Error(), line)
		}
		return output, failf(err, "%s", exitErr.Error())
	}
	return output, failf(err, "%v", err)
}

// lastLine returns the last non-empty line of s, trimmed and shortened for a reason.
func lastLine(s string) string {
	s = strings.TrimSuffix(s, truncatedMarker)
	s = strings.TrimRight(s, " \t\r\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	s = strings.TrimSpace(s)
	if len(s) > reasonLineBytes {
		s = strings.ToValidUTF8(s[:reasonLineBytes], "") + "..."
	}
	return s
}

// cappedBuffer keeps the first limit bytes written to it and discards the rest.
type cappedBuffer struct {
	mu        sync.Mutex
	buf       []byte
	limit     int
	truncated bool
}

// Write never fails: a command must not get EPIPE because its output was too long.
func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := b.limit - len(b.buf)
	if len(p) > room {
		b.truncated = true
	}
	if room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// String returns the output; when it was truncated, it ends with truncatedMarker and is still
// at most limit bytes long.
func (b *cappedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.truncated {
		return string(b.buf)
	}
	keep := max(b.limit-len(truncatedMarker), 0)
	return strings.ToValidUTF8(string(b.buf[:min(keep, len(b.buf))]), "") + truncatedMarker
}
