//go:build linux

package e2e

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The rows of crash-restart takeover and the peer link (see package lease:
// "Crash-restart takeover, pushes and handover").

// restartAfter is what systemd's Restart=on-failure with RestartSec=2s
// does to a crashed baton.
const restartAfter = 2 * time.Second

// 9. kill -9 of the active, restarted 2s later: the new process takes its
// own lease over (a new term on the same node and app) instead of waiting
// for the lease to expire.
func TestLB9Kill9Restart(t *testing.T) {
	gate(t, true)
	s := begin(t, "9 kill -9, restart 2s", phaseRandom, topoOpts{}, 60*time.Second)
	s.killActive()
	s.top.a.Wait(t, 5*time.Second)
	time.Sleep(restartAfter)
	s.top.a.restart(t)
	// The first answer: restart + one health check + R + P (+2s slack).
	limit := restartAfter + checkInterval + retryInterval + s.top.lbInt + 2*time.Second
	sum := s.finish(limit, time.Second)
	if sum.NewInstance != "app-a" {
		t.Errorf("new term served by %q, want app-a (the restarted node takes its own lease over)", sum.NewInstance)
	}
	if st := s.top.a.status(t); !strings.Contains(st.Reason, "taken over") {
		t.Errorf("node-a after the restart: %s (%s), want a takeover", st.Role, st.Reason)
	}
	if role, _ := s.top.b.roleTerm(t); role != "standby" {
		t.Errorf("node-b is %s, want standby", role)
	}
}

// 10. kill -9 of the active, restarted only after node-b took the lease
// over (its predecessor's lease expired): the restarted process never
// disturbs node-b's lease and stands by.
func TestLB10Kill9RestartLate(t *testing.T) {
	gate(t, false)
	s := begin(t, "10 kill -9, restart after takeover", phaseRandom, topoOpts{}, 60*time.Second)
	s.killActive()
	s.top.a.Wait(t, 5*time.Second)
	lo, hi := crashLimits(s.top.lbInt)
	s.top.b.waitProbe(t, http.StatusOK, "active", hi)
	_, termB := s.top.b.roleTerm(t)
	s.top.a.restart(t)
	s.top.a.waitProbe(t, http.StatusServiceUnavailable, "standby", 10*time.Second)
	time.Sleep(3 * time.Second) // under load, with node-a back
	sum := s.finish(hi, time.Second)
	if sum.Recovery < lo {
		t.Errorf("node-b served %v after the kill, before the lease could have expired (>= %v)", sum.Recovery, lo)
	}
	if role, term := s.top.b.roleTerm(t); role != "active" || term != termB {
		t.Errorf("node-b after node-a's restart: %s term %d, want active term %d", role, term, termB)
	}
	if role, _ := s.top.a.roleTerm(t); role != "standby" {
		t.Errorf("restarted node-a is %s, want standby", role)
	}
}

// 11. `baton step-down` with the peer link: the release is pushed, node-b
// acquires at once instead of at its next poll.
func TestLB11StepDownLink(t *testing.T) {
	gate(t, false)
	s := begin(t, "11 step-down, peer link", phaseAfterStandbyCheck, topoOpts{peerLink: true}, 60*time.Second)
	slow := s.slowAtEvent()
	s.event()
	cli := startProc(t, "baton step-down", nil, false, bin("baton"), "step-down", "-admin", s.top.a.adminURL(), "-token-file", s.top.token)
	if code := cli.Wait(t, 10*time.Second); code != 0 {
		t.Fatalf("baton step-down exited %d: %s", code, cli.Output())
	}
	sum := s.finish(retryInterval+s.top.lbInt+2*time.Second, 1500*time.Millisecond)
	checkPlanned(s, sum, slow)
}

// 12. SIGTERM of the active with the peer link.
func TestLB12SIGTERMLink(t *testing.T) {
	gate(t, false)
	s := begin(t, "12 SIGTERM, peer link", phaseAfterStandbyCheck, topoOpts{peerLink: true}, 60*time.Second)
	slow := s.slowAtEvent()
	s.event()
	s.top.a.Signal(syscall.SIGTERM)
	sum := s.finish(retryInterval+s.top.lbInt+2*time.Second, 1500*time.Millisecond)
	if code := s.top.a.Wait(t, exitDelay(s.top.lbInt)+drainTimeout+5*time.Second); code != 0 {
		t.Errorf("node-a exited %d after SIGTERM, want 0", code)
	}
	checkPlanned(s, sum, slow)
}

// 13. `baton step-down -to node-b`: the lease moves to node-b without
// ever being free.
func TestLB13StepDownTo(t *testing.T) {
	gate(t, true)
	s := begin(t, "13 step-down -to node-b", phaseAfterStandbyCheck, topoOpts{peerLink: true}, 60*time.Second)
	slow := s.slowAtEvent()
	s.event()
	cli := startProc(t, "baton step-down -to", nil, false, bin("baton"), "step-down", "-to", "node-b", "-admin", s.top.a.adminURL(), "-token-file", s.top.token)
	if code := cli.Wait(t, 30*time.Second); code != 0 || !strings.Contains(cli.Output(), "handed over to node-b") {
		t.Fatalf("baton step-down -to exited %d: %s", code, cli.Output())
	}
	sum := s.finish(s.top.lbInt+2*time.Second, 1500*time.Millisecond)
	checkPlanned(s, sum, slow)
	if st := s.top.b.status(t); !strings.Contains(st.Reason, "handed over by node-a") {
		t.Errorf("node-b: %s (%s), want handed over by node-a", st.Role, st.Reason)
	}
}

// killActive sends SIGKILL to node-a at a random phase: the switch starts
// at the signal (a killed node logs nothing).
func (s *scenario) killActive() {
	s.fromLog = false
	sleepUntil(s.eventAt(0))
	s.event()
	s.top.a.Signal(syscall.SIGKILL)
}

// checkPlanned: a planned move loses nothing, requests in flight finish on
// the old backend, and the new active serves.
func checkPlanned(s *scenario, sum Summary, slow func() []Request) {
	t := s.t
	t.Helper()
	if sum.Failed != 0 {
		t.Errorf("%d of %d requests failed across a planned move, want 0 (HAProxy had no server up for %v); first: %s",
			sum.Failed, sum.Requests, sum.LBNoServer.Round(time.Millisecond), sum.FirstFailure)
	}
	for _, r := range slow() {
		if !r.OK() || r.Instance != "app-a" || r.Term != s.w.OldTerm {
			t.Errorf("a request in flight at the event: %s, want 200 from app-a under term %d", r, s.w.OldTerm)
		}
	}
	if sum.NewInstance != "app-b" {
		t.Errorf("new active's backend %q, want app-b", sum.NewInstance)
	}
}
