package node

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
)

// hookRunner runs [hooks] commands on role changes. Each runs in its own
// goroutine with the configured timeout, killed with its children at it; a
// hook never blocks the election or the proxy.
type hookRunner struct {
	n   *Node
	log *zap.Logger
	wg  sync.WaitGroup
}

const hookOutputLimit = 4 << 10

// fire starts the hook for a change to role ("active" or "standby"), if
// one is configured; t is the transition that made it.
func (h *hookRunner) fire(role string, t Transition) {
	cfg := h.n.live.Load()
	argv := cfg.Hooks.OnActive
	if role == "standby" {
		argv = cfg.Hooks.OnStandby
	}
	if len(argv) == 0 {
		return
	}
	env := []string{
		"BATON_NODE=" + h.n.cfg.NodeName,
		"BATON_ROLE=" + role,
		"BATON_TERM=" + strconv.FormatUint(t.Term, 10),
		"BATON_HOLDER=" + t.Holder,
		"BATON_REASON=" + t.Reason,
	}
	timeout := cfg.Hooks.Timeout.D()
	h.wg.Go(func() { h.run(role, argv, env, timeout) })
}

func (h *hookRunner) run(role string, argv, env []string, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	var out limitedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	killGroup(cmd)
	cmd.WaitDelay = time.Second
	start := time.Now()
	err := cmd.Run()
	fields := []zap.Field{
		zap.String("hook", "on_"+role), zap.Strings("command", argv),
		zap.Duration("took", time.Since(start).Round(time.Millisecond)),
		zap.ByteString("output", out.Bytes()),
	}
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		h.log.Warn("hook killed at its timeout", append(fields, zap.Duration("timeout", timeout))...)
	case err != nil:
		h.log.Warn("hook failed", append(fields, zap.Error(err))...)
	default:
		h.log.Info("hook ran", fields...)
	}
}

// wait waits for running hooks (each is bounded by its timeout).
func (h *hookRunner) wait() { h.wg.Wait() }

// limitedBuffer keeps the first hookOutputLimit bytes written to it.
type limitedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := hookOutputLimit - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (l *limitedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.TrimSpace(l.b.Bytes())
}
