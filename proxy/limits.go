package proxy

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Limits on what clients can make this node do, so that no client traffic,
// however hostile, starves the probe, the admin API or the election (they
// have listeners, goroutines and descriptors of their own), or makes the
// backend look failed when it is only busy.
//
//   - Backend concurrency (Options.MaxBackendConns): at most that many
//     requests are at the backend (or, on a standby, at the active node) at
//     once. Past it a request waits up to Options.BackendQueueTimeout for
//     its turn, then gets 503 with Retry-After. Neither the wait nor that
//     503 is a backend failure: the Observer hears of a request only once
//     it reaches the backend. So the backend's own connections are bounded
//     whatever the clients do (slow bodies, slow readers, floods of
//     cancelled requests).
//   - Cancelled requests do not cost a connection each: when the client
//     goes away while the fast path waits for the backend, the answer is
//     still read (for up to salvageWindow, at most salvageMax bytes) and
//     the connection goes back to the pool. A rapid-reset loop then reuses
//     a few connections instead of opening one per reset.
//   - Client connections (ConnLimiter): at most Options.MaxConns per main
//     listener; at the cap the longest-idle keep-alive connection is
//     closed to make room, and if none is idle the listener stops
//     accepting until one ends (new clients wait in the kernel's backlog).
//   - Slow clients (Options.ClientTimeout): a request body that makes no
//     progress for that long fails the request (408), and so does an
//     answer the client does not read for that long (the connection is
//     cut). Small bodies (up to Options.BufferBody) are read in full before
//     the request takes a backend slot, so a client that trickles one
//     holds no backend connection at all.

// salvageWindow and salvageMax bound the work done for a request whose
// client went away, to keep its backend connection.
const (
	salvageWindow = time.Second
	salvageMax    = 256 << 10
)

// gate bounds the requests at the backend. A nil gate admits everything.
type gate struct {
	slots   chan struct{}
	timeout time.Duration
	waiting atomic.Int64
	full    atomic.Bool // for logging once per change
	log     *zap.Logger
}

func newGate(max int, timeout time.Duration, log *zap.Logger) *gate {
	if max <= 0 {
		return nil
	}
	return &gate{slots: make(chan struct{}, max), timeout: timeout, log: log}
}

// enter takes a slot, waiting up to the queue timeout (or until ctx ends).
// It reports whether a slot came, and whether it had to wait for it.
func (g *gate) enter(ctx context.Context) (ok, waited bool) {
	if g == nil {
		return true, false
	}
	select {
	case g.slots <- struct{}{}:
		return true, false
	default:
	}
	return g.wait(ctx), true
}

func (g *gate) wait(ctx context.Context) bool {
	if g.full.CompareAndSwap(false, true) {
		g.log.Warn("backend concurrency limit reached: requests wait for a slot",
			zap.Int("max_backend_conns", cap(g.slots)), zap.Duration("queue_timeout", g.timeout))
	}
	g.waiting.Add(1)
	defer g.waiting.Add(-1)
	if g.timeout <= 0 {
		return false
	}
	t := time.NewTimer(g.timeout)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// leave gives a slot back.
func (g *gate) leave() {
	if g == nil {
		return
	}
	<-g.slots
	if g.full.Load() && len(g.slots) < cap(g.slots)/2 && g.waiting.Load() == 0 && g.full.CompareAndSwap(true, false) {
		g.log.Info("backend concurrency back under its limit", zap.Int("in_use", len(g.slots)))
	}
}

// stats returns the requests at the backend (or active node) now, and
// those waiting for a slot.
func (g *gate) stats() (inUse, waiting int) {
	if g == nil {
		return 0, 0
	}
	return len(g.slots), int(g.waiting.Load())
}

// busyAnswer is the 503 of a request that found no backend slot in time.
func busyAnswer(ex *exchange, r *http.Request, retryAfter string) {
	if r.Context().Err() != nil {
		ex.gone = true // the client left while it waited
	}
	ex.busy, ex.path = true, PathRejected
	h := ex.Header()
	h.Set("Retry-After", retryAfter)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	ex.WriteHeader(http.StatusServiceUnavailable)
	io.WriteString(ex, "baton: backend busy\n")
}
