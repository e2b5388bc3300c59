//go:build unix

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// hostPair is one pair of baton nodes (and their apps) of several on the
// same hosts: here all four nodes run on this machine, each pair on its
// own lease file, ports and state folder.
type hostPair struct {
	name       string
	a, b       *batonNode
	apps       map[*batonNode]string // the app instance each node serves
	lease, dir string
}

func startHostPair(t *testing.T, n int) *hostPair {
	t.Helper()
	p := &hostPair{name: fmt.Sprintf("pair %d", n), dir: t.TempDir()}
	p.lease = filepath.Join(p.dir, "lease.json") // lease.state_dir defaults to its folder
	token := filepath.Join(p.dir, "token")
	os.WriteFile(token, []byte("test-token\n"), 0o600)
	appA, appB := startApp(t, fmt.Sprintf("app-a%d", n)), startApp(t, fmt.Sprintf("app-b%d", n))
	p.a = startNode(t, fmt.Sprintf("a%d", n), nodeOpts{leaseFile: p.lease, tokenFile: token, backendPort: appA.port})
	waitProbe(t, p.a, 200, 10*time.Second)
	p.b = startNode(t, fmt.Sprintf("b%d", n), nodeOpts{leaseFile: p.lease, tokenFile: token, backendPort: appB.port})
	waitRole(t, p.b, "standby", 10*time.Second)
	p.apps = map[*batonNode]string{p.a: appA.Name, p.b: appB.Name}
	return p
}

// steadyWatch samples a pair's probes until stopped and keeps the first
// sample where the active was not 200 or the standby not 503.
type steadyWatch struct {
	stop    context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	samples int
	broken  string
}

func watchSteady(active, standby *batonNode) *steadyWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &steadyWatch{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			ca, ra := active.probeCode()
			cs, rs := standby.probeCode()
			w.mu.Lock()
			w.samples++
			if (ca != 200 || cs != 503) && w.broken == "" {
				w.broken = fmt.Sprintf("%s %d %q, %s %d %q at %s", active.name, ca, ra, standby.name, cs, rs, time.Now().Format(time.StampMilli))
			}
			w.mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return w
}

func (w *steadyWatch) check(t *testing.T, p *hostPair) {
	t.Helper()
	w.stop()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.broken != "" {
		t.Errorf("%s moved while the other pair failed over: %s", p.name, w.broken)
	}
	if w.samples < 10 {
		t.Errorf("%s: only %d probe samples", p.name, w.samples)
	}
}

// servedBy checks that a request through n reaches the app of want (the
// pair's active node), whichever node of the pair n is.
func (p *hostPair) servedBy(t *testing.T, n, want *batonNode) {
	t.Helper()
	code, body, err := n.get("/")
	if err != nil || code != 200 || !strings.Contains(body, "instance="+p.apps[want]) {
		t.Errorf("%s: request through %s: %d %q %v, want it answered by %s", p.name, n.name, code, body, err, p.apps[want])
	}
}

// TestTwoPairsOnOneHost: two pairs on the same hosts (two apps behind two
// load-balancing rules with a probe each) move their roles independently.
// A step-down in pair 1 fails pair 1 over while pair 2's active keeps its
// probe at 200 and its term throughout; then the reverse. The four
// configurations also pass check-config two by two, one of each pair,
// and two of one pair do not (they share a lease).
func TestTwoPairsOnOneHost(t *testing.T) {
	skipShort(t)
	t0 := time.Now()
	p1, p2 := startHostPair(t, 1), startHostPair(t, 2)
	t.Logf("two pairs up in %v", time.Since(t0).Round(time.Millisecond))

	var out, errb bytes.Buffer
	for _, files := range [][]string{{p1.a.configPath, p2.a.configPath}, {p1.b.configPath, p2.b.configPath}} {
		out.Reset()
		errb.Reset()
		if code := run(append([]string{"check-config", "-offline"}, files...), &out, &errb); code != 0 {
			t.Errorf("check-config %v: exit %d\n%s%s", files, code, out.String(), errb.String())
		}
	}
	errb.Reset()
	if code := run([]string{"check-config", "-offline", p1.a.configPath, p1.b.configPath}, &out, &errb); code != 2 ||
		!strings.Contains(errb.String(), "both compete for the same lease") {
		t.Errorf("check-config of both nodes of pair 1: exit %d, want 2 naming the lease:\n%s", code, errb.String())
	}

	ctx, stopWatch := context.WithCancel(context.Background())
	split1, split2 := watchProbes(ctx, p1.a, p1.b), watchProbes(ctx, p2.a, p2.b)
	defer func() { stopWatch(); split1.check(t); split2.check(t) }()

	for _, n := range []*batonNode{p1.a, p1.b} {
		p1.servedBy(t, n, p1.a)
	}
	for _, n := range []*batonNode{p2.a, p2.b} {
		p2.servedBy(t, n, p2.a)
	}

	// stepDown moves pair p's role from its active to its standby with
	// `baton step-down -config FILE` while the other pair is watched.
	stepDown := func(p, other *hostPair, active, standby, otherActive, otherStandby *batonNode) {
		t.Helper()
		term, otherTerm := active.status(t).Term, otherActive.status(t).Term
		steady := watchSteady(otherActive, otherStandby)
		t0 := time.Now()
		sd := start(t, "step-down "+active.name, "baton", "step-down", "-config", active.configPath)
		if code := sd.Wait(t, 10*time.Second); code != 0 {
			t.Fatalf("baton step-down -config %s: exit %d\n%s", active.configPath, code, sd.Output())
		}
		waitProbe(t, standby, 200, 5*time.Second)
		took := time.Since(t0)
		t.Logf("FIGURE %s: %s active %v after baton step-down on %s", p.name, standby.name, took.Round(time.Millisecond), active.name)
		waitRole(t, active, "standby", 5*time.Second)
		time.Sleep(300 * time.Millisecond) // the other pair is watched a little longer
		steady.check(t, other)

		if st := standby.status(t); st.Term != term+1 || st.Holder == nil || st.Holder.Node != standby.name {
			t.Errorf("%s after the step-down: term %d holder %+v, want term %d held by %s", p.name, st.Term, st.Holder, term+1, standby.name)
		}
		if st := otherActive.status(t); st.Role != "active" || st.Term != otherTerm || st.Holder == nil || st.Holder.Node != otherActive.name {
			t.Errorf("%s while %s failed over: %s role %s term %d holder %+v, want active, term %d", other.name, p.name, otherActive.name, st.Role, st.Term, st.Holder, otherTerm)
		}
		if st := otherStandby.status(t); st.Role != "standby" || st.Term != otherTerm {
			t.Errorf("%s while %s failed over: %s role %s term %d, want standby, term %d", other.name, p.name, otherStandby.name, st.Role, st.Term, otherTerm)
		}
		for _, n := range []*batonNode{active, standby} {
			p.servedBy(t, n, standby)
		}
		for _, n := range []*batonNode{otherActive, otherStandby} {
			other.servedBy(t, n, otherActive)
		}
	}

	stepDown(p1, p2, p1.a, p1.b, p2.a, p2.b) // pair 1 moves, pair 2 stays
	stepDown(p2, p1, p2.a, p2.b, p1.b, p1.a) // and the reverse
	t.Logf("test body took %v", time.Since(t0).Round(time.Millisecond))
}
