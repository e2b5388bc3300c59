//go:build linux

package e2e

import (
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// The matrix. Every scenario: HAProxy in front of node-a (active) and
// node-b (standby) on an Azurite lease, 8 keep-alive clients through
// HAProxy, one fault, then the assertions of scenario.finish plus its own.
// L, R, P below: lease duration, retry interval, the load balancer's check
// interval.

// 1. A planned `baton step-down` of the active loses no request; requests
// in flight on the old backend finish there.
func TestLB1StepDown(t *testing.T) {
	gate(t, true)
	s := begin(t, "1 step-down", phaseAfterStandbyCheck, topoOpts{}, 60*time.Second)
	slow := s.slowAtEvent()
	s.event()
	cli := startProc(t, "baton step-down", nil, false, bin("baton"), "step-down", "-admin", s.top.a.adminURL(), "-token-file", s.top.token)
	if code := cli.Wait(t, 10*time.Second); code != 0 {
		t.Fatalf("baton step-down exited %d: %s", code, cli.Output())
	}
	sum := s.finish(retryInterval+s.top.lbInt+2*time.Second, 1500*time.Millisecond)
	if sum.Failed != 0 {
		t.Errorf("%d of %d requests failed across a planned step-down, want 0 (HAProxy had no server up for %v); first: %s",
			sum.Failed, sum.Requests, sum.LBNoServer.Round(time.Millisecond), sum.FirstFailure)
	}
	for _, r := range slow() {
		if !r.OK() || r.Instance != "app-a" || r.Term != s.w.OldTerm {
			t.Errorf("a request in flight at the step-down: %s, want 200 from app-a under term %d", r, s.w.OldTerm)
		}
	}
	// node-a reports "draining" until its exit delay after the step-down
	// has passed and its in-flight requests are done, then "standby".
	s.top.a.waitProbe(t, http.StatusServiceUnavailable, "standby", exitDelay(s.top.lbInt)+drainTimeout)
	st := s.top.a.status(t)
	t.Logf("node-a after the step-down: forwarded %d, local %d", st.Requests.Forwarded, st.Requests.Local)
}

// 2. SIGTERM of the active loses no request: probe 503 at once, lease
// released, listeners kept open (forwarding) for the exit delay, exit 0.
func TestLB2SIGTERM(t *testing.T) {
	gate(t, false)
	s := begin(t, "2 SIGTERM", phaseAfterStandbyCheck, topoOpts{}, 60*time.Second)
	slow := s.slowAtEvent()
	s.event()
	s.top.a.Signal(syscall.SIGTERM)
	sum := s.finish(retryInterval+s.top.lbInt+2*time.Second, 1500*time.Millisecond)
	if code := s.top.a.Wait(t, exitDelay(s.top.lbInt)+drainTimeout+5*time.Second); code != 0 {
		t.Errorf("node-a exited %d after SIGTERM, want 0", code)
	}
	if sum.Failed != 0 {
		t.Errorf("%d of %d requests failed across a SIGTERM, want 0 (HAProxy had no server up for %v); first: %s",
			sum.Failed, sum.Requests, sum.LBNoServer.Round(time.Millisecond), sum.FirstFailure)
	}
	for _, r := range slow() {
		if !r.OK() || r.Instance != "app-a" || r.Term != s.w.OldTerm {
			t.Errorf("a request in flight at the SIGTERM: %s, want 200 from app-a under term %d", r, s.w.OldTerm)
		}
	}
}

// crashLimits are the bounds for a node that vanishes without releasing:
// the standby takes over once the lease expired at the storage service,
// which is at least L - renew_interval after the fault (the last renew
// was at most one interval earlier), and at most L + R + P + 2s.
func crashLimits(p time.Duration) (lo, hi time.Duration) {
	return leaseDuration - renewInterval - 500*time.Millisecond, leaseDuration + retryInterval + p + 2*time.Second
}

// 3. kill -9 of the active: the standby takes over when the lease expires,
// never before.
func TestLB3Kill9(t *testing.T) {
	gate(t, true)
	s := begin(t, "3 kill -9", phaseRandom, topoOpts{}, 60*time.Second)
	s.killActive()
	lo, hi := crashLimits(s.top.lbInt)
	sum := s.finish(hi, time.Second)
	if sum.Recovery < lo {
		t.Errorf("the standby served %v after the kill, before the lease could have expired (>= %v)", sum.Recovery, lo)
	}
	if sum.NewInstance != "app-b" {
		t.Errorf("new active's backend %q, want app-b", sum.NewInstance)
	}
}

// 4. The active's backend dies: node-a turns unhealthy after fall checks,
// releases the lease, node-b takes over.
func TestLB4BackendKilled(t *testing.T) {
	gate(t, false)
	s := begin(t, "4 backend killed", phaseRandom, topoOpts{}, 60*time.Second)
	sleepUntil(s.eventAt(0))
	s.event()
	s.top.appA.Signal(syscall.SIGKILL)
	limit := checkFall*checkInterval + checkTimeout + retryInterval + s.top.lbInt + 2*time.Second
	sum := s.finish(limit, time.Second)
	if sum.NewInstance != "app-b" {
		t.Errorf("new active's backend %q, want app-b", sum.NewInstance)
	}
	// node-a drains first (it keeps its clients for the exit delay), then
	// settles as unhealthy.
	if code, role := s.top.a.probeCode(); code != http.StatusServiceUnavailable || (role != "unhealthy" && role != "draining") {
		t.Errorf("node-a probe %d %q, want 503 draining or unhealthy", code, role)
	}
	s.top.a.waitProbe(t, http.StatusServiceUnavailable, "unhealthy", 10*time.Second)
}

// 5. The active frozen (SIGSTOP) for longer than the lease: node-b takes
// over as after a crash; when node-a wakes, past its deadline, it serves
// nothing locally: its probe never says 200, a request sent to it directly
// is forwarded to node-b, its local-request counter does not move.
func TestLB5Freeze(t *testing.T) {
	gate(t, true)
	freeze := leaseDuration + 3*time.Second
	s := begin(t, fmt.Sprintf("5 SIGSTOP %v", freeze), phaseRandom, topoOpts{}, 90*time.Second)
	s.fromLog = false
	a := s.top.a
	sleepUntil(s.eventAt(0))
	s.event()
	a.Signal(syscall.SIGSTOP) // proc.kill continues it at cleanup, if the test ends early
	time.Sleep(freeze)
	a.Signal(syscall.SIGCONT)
	woke := time.Now()

	// The woken node's probe, sampled as fast as the harness can.
	probeUp := 0
	var st1 int
	for time.Since(woke) < 1500*time.Millisecond {
		code, role := a.probeCode()
		if code == http.StatusOK {
			probeUp++
		}
		if st1 == 0 && code != 0 {
			st1 = code
			t.Logf("node-a's first probe answer after waking: %d %q (%v after SIGCONT)", code, role, time.Since(woke).Round(time.Millisecond))
		}
		time.Sleep(10 * time.Millisecond)
	}
	local1 := a.status(t).Requests.Local
	// A request straight to node-a (as an established flow would send).
	direct := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := direct.Get(a.url() + "/")
	directInst := ""
	if err == nil {
		directInst = res.Header.Get("X-Instance")
		res.Body.Close()
	}

	lo, hi := crashLimits(s.top.lbInt)
	sum := s.finish(hi, 2*time.Second)
	if probeUp > 0 {
		t.Errorf("node-a's probe answered 200 %d times after it woke past its deadline", probeUp)
	}
	if err != nil || res.StatusCode != http.StatusOK || directInst != "app-b" {
		t.Errorf("direct request to node-a after it woke: %v %v from %q, want 200 forwarded to app-b", err, res, directInst)
	}
	if local2 := a.status(t).Requests.Local; local2 != local1 {
		t.Errorf("node-a served %d requests locally after it woke", local2-local1)
	}
	if sum.Recovery < lo {
		t.Errorf("the standby served %v after the freeze, before the lease could have expired (>= %v)", sum.Recovery, lo)
	}
	if sum.NewInstance != "app-b" {
		t.Errorf("new active's backend %q, want app-b", sum.NewInstance)
	}
}

// storageLimit bounds recovery after a storage fault from the event: the
// lease at the storage service can stay held up to expiry after node-a's
// last renew that reached it (storage-side renews may arrive up to
// lateness after the fault), the storage must be back, then R + P + 2s.
func storageLimit(s *scenario, lateness time.Duration) time.Duration {
	held := lateness + leaseDuration
	back := s.w.Repair.Sub(s.w.Event)
	return max(held, back) + retryInterval + s.top.lbInt + 2*time.Second
}

// checkStorageFault: node-a fenced itself at its renew deadline (at most
// renew_deadline after the last renew that succeeded, itself at most
// renew_interval before the fault), and nobody served a new term before
// the storage was back.
func checkStorageFault(s *scenario, sum Summary) {
	t := s.t
	t.Helper()
	if sw := s.w.Switch; !sw.IsZero() {
		if d := sw.Sub(s.w.Event); d > renewDeadline+time.Second {
			t.Errorf("node-a left the active role %v after the storage fault, want <= renew_deadline + 1s", d)
		}
	}
	if sum.Recovered && sum.Recovery < s.w.Repair.Sub(s.w.Event) {
		t.Errorf("a new term served %v after the fault, before the storage was back (%v)", sum.Recovery, s.w.Repair.Sub(s.w.Event))
	}
}

// 6. Azurite stopped for longer than the renew deadline, then restarted.
func TestLB6StorageDown(t *testing.T) {
	gate(t, false)
	down := renewDeadline + 2*time.Second
	s := begin(t, fmt.Sprintf("6 storage down %v", down), phaseRandom, topoOpts{}, 90*time.Second)
	sleepUntil(s.eventAt(0))
	s.event()
	s.top.az.Stop()
	time.Sleep(time.Until(s.w.Event.Add(down)))
	s.top.az.Restart()
	s.repaired()
	t.Logf("azurite back %v after it was stopped", s.w.Repair.Sub(s.w.Event).Round(time.Millisecond))
	sum := s.finish(storageLimit(s, 0), 2*time.Second)
	checkStorageFault(s, sum)
}

// 7. Storage slower than the per-call timeout (each direction delayed by
// twice call_timeout) for longer than the renew deadline, then fast again.
func TestLB7StorageSlow(t *testing.T) {
	gate(t, false)
	delay, slowFor := 2*callTimeout, renewDeadline+3*time.Second
	s := begin(t, fmt.Sprintf("7 storage +%v for %v", delay, slowFor), phaseRandom, topoOpts{delayProxy: true}, 90*time.Second)
	sleepUntil(s.eventAt(0))
	s.event()
	s.top.delay.SetDelay(delay)
	time.Sleep(slowFor)
	s.top.delay.SetDelay(0)
	s.repaired()
	// Renews sent before node-a fenced itself reach the storage up to one
	// delay late and keep its lease there.
	sum := s.finish(storageLimit(s, renewDeadline+2*delay), 2*time.Second)
	checkStorageFault(s, sum)
}

// 8. Both backends down: nobody may serve; one returns: its node takes over
// once its health check passes.
func TestLB8BothBackendsDown(t *testing.T) {
	gate(t, false)
	down := 3 * time.Second
	s := begin(t, fmt.Sprintf("8 both backends down %v", down), phaseRandom, topoOpts{}, 60*time.Second)
	sleepUntil(s.eventAt(0))
	s.event()
	s.top.appA.Signal(syscall.SIGKILL)
	s.top.appB.Signal(syscall.SIGKILL)
	s.top.a.waitProbe(t, http.StatusServiceUnavailable, "", 5*time.Second)
	time.Sleep(time.Until(s.w.Event.Add(down)))
	if code, role := s.top.b.probeCode(); code != http.StatusServiceUnavailable || role != "unhealthy" {
		t.Errorf("node-b with its backend down: probe %d %q, want 503 unhealthy", code, role)
	}
	s.top.appB.Kill()
	s.top.appB.start(t)
	s.repaired()
	fromRepair := checkInterval + checkTimeout + retryInterval + s.top.lbInt + 2*time.Second
	sum := s.finish(s.w.Repair.Sub(s.w.Event)+fromRepair, time.Second)
	if sum.AfterRepair > fromRepair {
		t.Errorf("recovery took %v after the backend returned, want <= %v", sum.AfterRepair, fromRepair)
	}
	if sum.Recovered && sum.AfterRepair < 0 {
		t.Errorf("a new term served before any backend was back")
	}
	if sum.NewInstance != "app-b" {
		t.Errorf("new active's backend %q, want app-b", sum.NewInstance)
	}
}
