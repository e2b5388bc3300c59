//go:build unix

package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestBackendErrorsMoveTheRole: the active's app starts answering 500 on
// its health endpoint; the other node is active within fall × interval +
// retry_interval + 1s, and the first node does not compete again before its
// candidacy back-off has passed, even though its app recovers at once.
func TestBackendErrorsMoveTheRole(t *testing.T) {
	skipShort(t)
	// A 4s back-off leaves room for the steps between node-a's demotion
	// and the check that it stays out (a status call, a step-down process).
	p := startPair(t, nodeOpts{backoff: "4s"})
	a, b, appA := p.a, p.b, p.appA

	setHealth := func(port, code int) {
		t.Helper()
		res, err := quick.Post(fmt.Sprintf("http://127.0.0.1:%d/control/health?status=%d", port, code), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	t0 := time.Now()
	setHealth(appA.port, http.StatusInternalServerError)
	limit := 2*250*time.Millisecond + 500*time.Millisecond + time.Second
	waitProbe(t, b, 200, limit+3*time.Second)
	took := time.Since(t0)
	t.Logf("FIGURE health 500 -> other node active: %v (limit %v)", took.Round(time.Millisecond), limit)
	if took > limit+slack {
		t.Errorf("took %v, want <= fall*interval + retry_interval + 1s = %v (+%v)", took, limit, slack)
	}
	st := a.status(t)
	if st.Health.Healthy || st.Role == "active" {
		t.Errorf("node-a after its app failed: role %s healthy %v", st.Role, st.Health.Healthy)
	}
	demoted := st.Since // node-a's demotion, by its own clock

	// The app recovers at once; node-b steps down right away, so the lease
	// is free: node-a must still not compete before its back-off (4s) ends,
	// and must take the lease soon after.
	setHealth(appA.port, http.StatusOK)
	waitRole(t, a, "standby", 5*time.Second)
	backoffUntil := a.status(t).Backoff
	if backoffUntil.IsZero() || backoffUntil.Before(demoted.Add(3500*time.Millisecond)) {
		t.Fatalf("node-a back-off until %v; want 4s after its demotion at %v", backoffUntil, demoted)
	}
	out := start(t, "step-down", "baton", "step-down", "-admin", fmt.Sprintf("http://127.0.0.1:%d", b.admin), "-token-file", p.token)
	if code := out.Wait(t, 10*time.Second); code != 0 {
		t.Fatalf("step-down of node-b exited %d: %s", code, out.Output())
	}
	if time.Until(backoffUntil) < 300*time.Millisecond {
		t.Fatalf("too slow to test the back-off: it ends in %v", time.Until(backoffUntil))
	}
	for time.Now().Before(backoffUntil.Add(-50 * time.Millisecond)) {
		if code, _ := a.probeCode(); code == 200 {
			t.Fatalf("node-a became active at %v, before its back-off ended at %v", time.Now().Format(time.StampMilli), backoffUntil.Format(time.StampMilli))
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitProbe(t, a, 200, 2*time.Second)
	t.Logf("node-a active %v after its back-off ended", time.Since(backoffUntil).Round(time.Millisecond))
}
