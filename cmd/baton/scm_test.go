package main

import (
	"testing"
	"time"
)

type scmReport struct {
	state      scmState
	checkpoint uint32
}

// scmHarness drives serveSCM the way svc.Run does: requests in, status
// reports out, each handed over synchronously.
type scmHarness struct {
	t       *testing.T
	reqs    chan scmRequest
	reports chan scmReport
	tick    chan time.Time
	ready   chan struct{}
	exit    chan int
	stops   chan error
	reloads chan struct{}
	result  chan int
}

func startSCM(t *testing.T) *scmHarness {
	h := &scmHarness{t: t, reqs: make(chan scmRequest), reports: make(chan scmReport), tick: make(chan time.Time),
		ready: make(chan struct{}), exit: make(chan int, 1), stops: make(chan error, 4),
		reloads: make(chan struct{}, 4), result: make(chan int, 1)}
	s := scmSession{ready: h.ready, exit: h.exit, tick: h.tick,
		stop:   func(cause error) { h.stops <- cause },
		reload: func() { h.reloads <- struct{}{} }}
	go func() {
		h.result <- serveSCM(s, h.reqs, func(r scmRequest) scmRequest { return r },
			func(st scmState, cp uint32) { h.reports <- scmReport{st, cp} })
	}()
	t.Cleanup(func() {
		select {
		case h.exit <- -1:
		default:
		}
	})
	return h
}

func (h *scmHarness) want(state scmState, checkpoint uint32) {
	h.t.Helper()
	select {
	case r := <-h.reports:
		if r.state != state || r.checkpoint != checkpoint {
			h.t.Fatalf("reported %v/%d, want %v/%d", r.state, r.checkpoint, state, checkpoint)
		}
	case <-time.After(10 * time.Second):
		h.t.Fatalf("no report, want %v/%d", state, checkpoint)
	}
}

func (h *scmHarness) send(r scmRequest) {
	h.t.Helper()
	select {
	case h.reqs <- r:
	case <-time.After(10 * time.Second):
		h.t.Fatalf("request %d not taken", r)
	}
}

func (h *scmHarness) ticks() {
	h.t.Helper()
	select {
	case h.tick <- time.Time{}:
	case <-time.After(10 * time.Second):
		h.t.Fatal("tick not taken")
	}
}

func (h *scmHarness) finish(code int) {
	h.t.Helper()
	h.exit <- code
	select {
	case got := <-h.result:
		if got != code {
			h.t.Fatalf("serveSCM returned %d, want %d", got, code)
		}
	case <-time.After(10 * time.Second):
		h.t.Fatal("serveSCM did not return")
	}
}

func count[T any](c chan T) int {
	n := 0
	for {
		select {
		case <-c:
			n++
		default:
			return n
		}
	}
}

func TestSCMStopTakesTheSIGTERMPath(t *testing.T) {
	h := startSCM(t)
	h.want(scmStartPending, 0)
	h.ticks()
	h.want(scmStartPending, 1) // progress while the node starts
	close(h.ready)
	h.want(scmRunning, 0)
	h.ticks() // no report while running
	h.send(scmInterrogate)
	h.want(scmRunning, 0)
	h.send(scmReload)
	h.send(scmIgnore)
	h.send(scmStop)
	h.want(scmStopPending, 0)
	if cause := <-h.stops; cause != errServiceStop {
		t.Errorf("stopped with cause %v, want %v", cause, errServiceStop)
	}
	h.ticks()
	h.want(scmStopPending, 1) // progress while the node drains
	h.send(scmShutdown)       // a shutdown after a stop: already stopping
	h.send(scmReload)         // not while stopping
	h.send(scmInterrogate)
	h.want(scmStopPending, 1)
	h.finish(0)
	if n := count(h.stops); n != 0 {
		t.Errorf("stop called %d more times, want once", n)
	}
	if n := count(h.reloads); n != 1 {
		t.Errorf("reload called %d times, want 1", n)
	}
}

func TestSCMEarlyExit(t *testing.T) {
	for _, tc := range []struct {
		name string
		code int
	}{
		{"configuration error", exitUsage},
		{"runtime failure", exitFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startSCM(t)
			h.want(scmStartPending, 0)
			h.finish(tc.code) // cmdRun returned before the node served
			if n := count(h.stops); n != 0 {
				t.Errorf("stop called %d times, want 0", n)
			}
		})
	}
}

func TestSCMShutdownWhileStarting(t *testing.T) {
	h := startSCM(t)
	h.want(scmStartPending, 0)
	h.send(scmShutdown)
	h.want(scmStopPending, 0)
	close(h.ready) // the node became ready while stopping: stay stop-pending
	h.send(scmInterrogate)
	h.want(scmStopPending, 0)
	h.finish(0)
	if cause := <-h.stops; cause != errSystemShutdown {
		t.Errorf("stopped with cause %v, want %v", cause, errSystemShutdown)
	}
	if n := count(h.stops); n != 0 {
		t.Errorf("stop called %d more times, want once", n)
	}
}
