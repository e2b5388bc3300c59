//go:build linux

package e2e

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvFull names the variable that enables the scenarios `make test` leaves
// out (2, 4, 6, 7, 8); `make e2e` sets it.
const EnvFull = "BATON_E2E_FULL"

// gate skips a scenario under -short, and a full-matrix-only scenario
// unless BATON_E2E_FULL=1, saying how to run it.
func gate(t *testing.T, inMakeTest bool) {
	t.Helper()
	if testing.Short() {
		t.Skip("load-balancer failover scenario with real processes (HAProxy, Azurite, baton): run without -short (make test does)")
	}
	if !inMakeTest && os.Getenv(EnvFull) != "1" {
		t.Skipf("part of the full failover matrix only: run `make e2e`, or %s=1 go test -run %s ./e2e/", EnvFull, t.Name())
	}
}

// scenario is one run of the matrix: the topology under load, one event.
type scenario struct {
	t    *testing.T
	name string
	top  *topology
	load *loader
	w    Window
	// fromLog: the switch began when node-a logged leaving the active role
	// (it is alive to do so); otherwise at the event (kill -9, SIGSTOP).
	fromLog bool
	phase   phase
	dark    []span // when HAProxy had no server up, from the event on
}

// begin starts the topology and the load, and checks that the load is
// served by node-a alone before anything happens.
func begin(t *testing.T, name string, ph phase, o topoOpts, maxDur time.Duration) *scenario {
	t.Helper()
	top := startTopology(t, o)
	s := &scenario{t: t, name: name, top: top, fromLog: true, phase: ph}
	s.load = startLoad(t, top.lb.url(), maxDur)
	warm := time.Now()
	s.load.waitOK(t, "app-a", warm, 4*loadWorkers, 5*time.Second)
	time.Sleep(500 * time.Millisecond)
	for _, r := range s.load.snapshot() {
		if !r.OK() || r.Instance != "app-a" || r.Term != top.before {
			t.Fatalf("before the event, want every request answered 200 by app-a under term %d; got %s", top.before, r)
		}
	}
	s.w.OldTerm = top.before
	return s
}

// event marks the instant the fault is injected: call it right before.
func (s *scenario) event() {
	s.w.Event = time.Now()
	s.t.Logf("event at %s", s.w.Event.Format("15:04:05.000"))
}

// repaired marks the instant the fault was undone.
func (s *scenario) repaired() { s.w.Repair = time.Now() }

// finish waits (at most limit after the event) for the new term to serve
// through HAProxy, keeps the load on for tail, stops it, analyses the
// requests, prints the report line and checks what every scenario must
// show: recovery, no dual serving, no stale answer, exactly one new term,
// and that term on the node that reports itself active.
func (s *scenario) finish(limit, tail time.Duration) Summary {
	t := s.t
	t.Helper()
	wait := time.Until(s.w.Event.Add(limit)) + 2*time.Second // past the limit, to measure a slow recovery
	if _, ok := s.load.waitRecovered(s.w.OldTerm, wait); ok {
		time.Sleep(tail)
	}
	rs := s.load.Stop()
	if s.fromLog {
		sw, how, ok := s.top.a.leftActive(s.w.Event)
		if !ok {
			t.Errorf("node-a never logged leaving the active role after the event")
		} else {
			s.w.Switch = sw
			t.Logf("node-a left the active role %v after the event: %s", sw.Sub(s.w.Event).Round(time.Millisecond), how)
		}
	}
	sum := Analyze(rs, s.w)
	s.dark = s.top.lb.noServer(s.w.Event, time.Now())
	sum.LBNoServer = total(s.dark)
	t.Logf("E2E %s", sum.Row(s.name, s.w.OldTerm))
	t.Logf("load balancer: %s", s.lbTransitions())
	if sum.Failed > 0 {
		fresh := 0
		for _, r := range rs {
			if !r.OK() && r.NewConn {
				fresh++
			}
		}
		t.Logf("failed requests: %d, %d of them on new connections through the load balancer, %d started while it had no server up; first: %s",
			sum.Failed, fresh, within(rs, s.dark), sum.FirstFailure)
	}
	if !sum.Recovered {
		t.Fatalf("no request was answered under a term newer than %d within %v of the event", s.w.OldTerm, wait)
	}
	if sum.Recovery > limit {
		t.Errorf("recovery took %v, want <= %v", sum.Recovery.Round(time.Millisecond), limit)
	}
	if sum.Dual > 0 {
		t.Errorf("dual serving: %d overlapping pairs from different backends; first: %s", sum.Dual, sum.FirstDual)
	}
	if sum.Stale > 0 {
		t.Errorf("%d requests started after the switch were answered under the old term %d; first: %s", sum.Stale, s.w.OldTerm, sum.FirstStale)
	}
	if sum.NewTerm != s.w.OldTerm+1 || sum.MaxTerm != sum.NewTerm {
		t.Errorf("terms: first new %d, highest %d, want both %d (exactly one takeover)", sum.NewTerm, sum.MaxTerm, s.w.OldTerm+1)
	}
	if sum.Terms > 2 {
		t.Errorf("answers after the event carried %d different terms, want at most the old and the new", sum.Terms)
	}
	s.checkActive(sum)
	return sum
}

// checkActive: the node whose app answered under the new term reports
// itself active with that term.
func (s *scenario) checkActive(sum Summary) {
	t := s.t
	t.Helper()
	n := s.top.b
	if sum.NewInstance == s.top.appA.name {
		n = s.top.a
	}
	if role, term := n.roleTerm(t); role != "active" || term != sum.NewTerm {
		t.Errorf("%s after the scenario: role %s term %d, want active %d", n.name, role, term, sum.NewTerm)
	}
}

// lbTransitions lists HAProxy's server state changes from the event on,
// as offsets from the event ("+0.218s node-b UP").
func (s *scenario) lbTransitions() string {
	var out []string
	for _, e := range s.top.lb.events() {
		if !e.check && !e.at.Before(s.w.Event) {
			out = append(out, fmt.Sprintf("+%.3fs %s %s", e.at.Sub(s.w.Event).Seconds(), e.server, upDown(e.up)))
		}
	}
	if len(out) == 0 {
		return "no server state change"
	}
	return strings.Join(out, "; ")
}

func upDown(up bool) string {
	if up {
		return "UP"
	}
	return "DOWN"
}

// phase says where in the load balancer's check cycle the event falls.
type phase int

const (
	// phaseRandom: anywhere, uniformly.
	phaseRandom phase = iota
	// phaseAfterStandbyCheck: 50ms after the load balancer checked
	// node-b (the standby). It sees node-b's new 200 only one interval
	// later, while it checks node-a (its checks are spread half an
	// interval apart) and sees its 503 half an interval after the event:
	// for half an interval it has no server up. The hard case for a
	// planned switchover, and about every other random phase is like it.
	phaseAfterStandbyCheck
)

// eventAt returns when to inject the fault: at least lead from now, at
// the scenario's phase of the check cycle.
func (s *scenario) eventAt(lead time.Duration) time.Time {
	t := s.t
	t.Helper()
	p := s.top.lbInt
	earliest := time.Now().Add(lead)
	if s.phase == phaseRandom {
		return earliest.Add(time.Duration(rand.Int64N(int64(p))))
	}
	var first time.Time
	for _, e := range s.top.lb.events() {
		if e.check && e.server == "node-b" {
			first = e.at
			break
		}
	}
	if first.IsZero() {
		t.Fatal("haproxy logged no check of node-b: cannot place the event after one")
	}
	k := (earliest.Sub(first) + p - 1) / p
	return first.Add(k*p + 50*time.Millisecond)
}

func sleepUntil(at time.Time) { time.Sleep(time.Until(at)) }

// slowAtEvent picks the event's moment (eventAt, at least 300 ms ahead),
// sends two 1.5 s requests through HAProxy 200 ms before it, waits until
// both are in app-a, then waits for the moment.
func (s *scenario) slowAtEvent() func() []Request {
	s.t.Helper()
	at := s.eventAt(300 * time.Millisecond)
	sleepUntil(at.Add(-200 * time.Millisecond))
	slow := slowRequests(s.t, s.top.lb.url(), 2, 1500)
	s.top.appA.waitSlow(s.t, 2)
	sleepUntil(at) // the slow requests are in flight on app-a
	return slow
}

// slowRequests sends n /slow?ms=ms requests through HAProxy, each on its
// own connection; the returned function waits for them and returns their
// outcomes (the test's cleanup waits for them too).
func slowRequests(t *testing.T, url string, n int, ms int) func() []Request {
	out := make([]Request, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 15 * time.Second}
			r := Request{Worker: -1 - i, Start: time.Now()}
			res, err := c.Get(url + "/slow?ms=" + strconv.Itoa(ms))
			if err != nil {
				r.Err = err.Error()
			} else {
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				r.Code, r.Instance, r.Term = res.StatusCode, res.Header.Get("X-Instance"), termOf(string(body))
			}
			r.End = time.Now()
			out[i] = r
		})
	}
	t.Cleanup(wg.Wait)
	return func() []Request { wg.Wait(); return out }
}
