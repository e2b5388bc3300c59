//go:build linux

package e2e

import (
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/batonproxy/baton/internal/azure/azuritetest"
)

// The failsafe rows (lease.failsafe with the peer link): the storage is
// no single point of failure while the peers can promise to stand by.

// finishSteady stops the load after tail and checks what a failsafe row
// must show: no failed request, no dual serving, no new term, every answer
// from app-a (the same active throughout).
func (s *scenario) finishSteady(tail time.Duration) Summary {
	t := s.t
	t.Helper()
	time.Sleep(tail)
	rs := s.load.Stop()
	s.w.Switch = time.Now().Add(time.Hour) // no switch: no answer is stale
	sum := Analyze(rs, s.w)
	s.dark = s.top.lb.noServer(s.w.Event, time.Now())
	sum.LBNoServer = total(s.dark)
	t.Logf("E2E %s", sum.Row(s.name, s.w.OldTerm))
	t.Logf("load balancer: %s", s.lbTransitions())
	if sum.Failed > 0 {
		t.Errorf("%d of %d requests failed, want 0; first: %s", sum.Failed, sum.Requests, sum.FirstFailure)
	}
	if sum.Dual > 0 {
		t.Errorf("dual serving: %d overlapping pairs; first: %s", sum.Dual, sum.FirstDual)
	}
	if sum.Recovered {
		t.Errorf("a new term %d served (%s): want the same active throughout", sum.NewTerm, sum.NewInstance)
	}
	for _, r := range rs {
		if r.OK() && r.Instance != "app-a" {
			t.Errorf("a request answered by %s: %s", r.Instance, r)
			break
		}
	}
	if role, term := s.top.a.roleTerm(t); role != "active" || term != s.w.OldTerm {
		t.Errorf("node-a after the scenario: %s term %d, want active %d", role, term, s.w.OldTerm)
	}
	return sum
}

// cutStorage cuts one node's path to the storage for d, at a random phase.
func (s *scenario) cutStorage(p *azuritetest.DelayProxy, d time.Duration) {
	sleepUntil(s.eventAt(0))
	s.event()
	p.SetPaused(true)
	p.DropConns()
	time.Sleep(d)
	p.SetPaused(false)
	s.repaired()
}

// 14. Azurite stopped for 60 s: node-a keeps serving on node-b's
// promises; after the storage returns it renews without a switchover.
func TestLB14StorageDownFailsafe(t *testing.T) {
	gate(t, false)
	down := 60 * time.Second
	s := begin(t, fmt.Sprintf("14 storage down %v, failsafe", down), phaseRandom, topoOpts{failsafe: true}, 120*time.Second)
	sleepUntil(s.eventAt(0))
	s.event()
	s.top.az.Stop()
	time.Sleep(down / 2)
	if st := s.top.a.status(t); !st.Failsafe {
		t.Errorf("node-a in the middle of the outage: %s (%s), want failsafe", st.Role, st.Reason)
	}
	time.Sleep(time.Until(s.w.Event.Add(down)))
	s.top.az.Restart()
	s.repaired()
	s.finishSteady(3 * renewInterval)
	if st := s.top.a.status(t); st.Failsafe {
		t.Errorf("node-a still in failsafe after the storage returned")
	}
}

// 15. node-a alone cut off from the storage for 20 s (node-b still reaches
// it and the lease expires there): node-b does not acquire, node-a serves.
func TestLB15ActiveCutOffFailsafe(t *testing.T) {
	gate(t, false)
	cut := 20 * time.Second
	s := begin(t, fmt.Sprintf("15 node-a cut off from storage %v, failsafe", cut), phaseRandom, topoOpts{failsafe: true, perNodeProxy: true}, 90*time.Second)
	s.cutStorage(s.top.storageA, cut)
	s.finishSteady(3 * renewInterval)
}

// 16. Storage down and node-b frozen (the link cut with it): node-a gets
// no promise and demotes at its renew deadline, as without failsafe;
// nobody serves until the storage is back.
func TestLB16StorageAndPeerDownFailsafe(t *testing.T) {
	gate(t, false)
	down := renewDeadline + 3*time.Second
	s := begin(t, fmt.Sprintf("16 storage down %v and node-b frozen, failsafe", down), phaseRandom, topoOpts{failsafe: true}, 90*time.Second)
	sleepUntil(s.eventAt(0))
	s.event()
	s.top.b.Signal(syscall.SIGSTOP) // proc.kill continues it at cleanup
	s.top.az.Stop()
	s.top.a.waitProbe(t, http.StatusServiceUnavailable, "", renewDeadline+2*time.Second)
	if sw := time.Since(s.w.Event); sw > renewDeadline+time.Second {
		t.Errorf("node-a served %v after the storage and its peer went away, want <= renew_deadline", sw)
	}
	time.Sleep(time.Until(s.w.Event.Add(down)))
	s.top.az.Restart()
	s.top.b.Signal(syscall.SIGCONT)
	s.repaired()
	sum := s.finish(storageLimit(s, 0), 2*time.Second)
	checkStorageFault(s, sum)
}

// 17. Only node-b's storage path is cut: nothing changes.
func TestLB17StandbyCutOffFailsafe(t *testing.T) {
	gate(t, false)
	cut := 20 * time.Second
	s := begin(t, fmt.Sprintf("17 node-b cut off from storage %v, failsafe", cut), phaseRandom, topoOpts{failsafe: true, perNodeProxy: true}, 90*time.Second)
	s.cutStorage(s.top.storageB, cut)
	s.finishSteady(2 * renewInterval)
	if st := s.top.a.status(t); st.Failsafe {
		t.Error("node-a went into failsafe although its own storage worked")
	}
}
