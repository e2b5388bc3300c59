package node

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/batonproxy/baton/lease"
)

// TestRoleOwner feeds the owner what the elector, the drain and the stop
// sequence report, and checks the one role that comes out, each
// transition logged once with its fields.
func TestRoleOwner(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	o := newRoleOwner(zap.New(core))
	st := lease.State{Role: lease.RoleUnhealthy, Reason: "no health report yet"}
	feed := func(r lease.Role, reason string) {
		st.Role, st.Reason = r, reason
		o.elected(st)
	}
	want := func(r lease.Role, drain uint64) {
		t.Helper()
		if v := o.view(); v.Role != r || v.Drain != drain || v.Now.To != r.String() {
			t.Fatalf("role %s (now %q) drain %d, want %s drain %d", v.Role, v.Now.To, v.Drain, r, drain)
		}
	}
	feed(lease.RoleUnhealthy, "no health report yet")
	feed(lease.RoleCandidate, "backend healthy")
	st.Term, st.Holder, st.HolderKnown = 1, lease.Record{Holder: "a", Term: 1}, true
	feed(lease.RoleActive, "lease acquired")
	feed(lease.RoleActive, "lease acquired") // a renew: no transition
	want(lease.RoleActive, 0)
	st.Failsafe = true
	feed(lease.RoleActive, "failsafe: storage unreachable")
	want(lease.RoleFailsafe, 0)
	st.Failsafe = false
	feed(lease.RoleActive, "lease renewed after failsafe")
	want(lease.RoleActive, 0)

	// A demotion drains from that instant; the elector moving on meanwhile
	// does not end the drain, only the drain's end does.
	st.Holder, st.HolderKnown = lease.Record{}, false
	feed(lease.RoleCandidate, "step-down: test")
	want(lease.RoleDraining, 1)
	st.Holder, st.HolderKnown = lease.Record{Holder: "b", Term: 2}, true
	feed(lease.RoleStandby, "held by b")
	want(lease.RoleDraining, 1)
	o.drainEnded(7) // not the drain under way
	want(lease.RoleDraining, 1)
	o.drainEnded(1)
	want(lease.RoleStandby, 0)

	// Active again before a drain ends: the drain is called off.
	st.Term = 3
	feed(lease.RoleActive, "lease acquired")
	feed(lease.RoleUnhealthy, "backend unhealthy: app")
	want(lease.RoleDraining, 2)
	feed(lease.RoleActive, "lease acquired")
	want(lease.RoleActive, 0)
	o.drainEnded(2)
	want(lease.RoleActive, 0)

	// Stopping is for good and starts no drain of the owner's: the stop
	// sequence drains.
	o.stop("stopping")
	feed(lease.RoleCandidate, "stopping")
	feed(lease.RoleStopping, "stopped")
	want(lease.RoleStopping, 0)

	var path []string
	for _, tr := range o.transitions() {
		path = append(path, tr.From+">"+tr.To)
	}
	got := strings.Join(path, " ")
	const wantPath = ">unhealthy unhealthy>candidate candidate>active active>failsafe failsafe>active " +
		"active>draining draining>standby standby>active active>draining draining>active active>stopping"
	if got != wantPath {
		t.Errorf("transitions\n got %s\nwant %s", got, wantPath)
	}
	if tr := o.transitions()[6]; tr.To != "standby" || tr.Reason != "held by b" || tr.Holder != "b" || tr.Term != 1 {
		t.Errorf("the end of the first drain: %+v", tr)
	}
	if tr := o.transitions()[5]; tr.Reason != "finishing requests after a demotion (step-down: test)" {
		t.Errorf("into draining: %+v", tr)
	}
	lines := logs.FilterMessage("role changed").All()
	if len(lines) != len(o.transitions()) {
		t.Errorf("%d role changes logged for %d transitions", len(lines), len(o.transitions()))
	}
	for _, l := range lines {
		for _, k := range []string{"from", "to", "reason", "term", "holder"} {
			if _, ok := l.ContextMap()[k]; !ok {
				t.Errorf("role change logged without %s: %v", k, l.ContextMap())
			}
		}
	}
	if o.drainsBegun() != 2 {
		t.Errorf("%d drains begun, want 2", o.drainsBegun())
	}

	// Bounded: the last maxTransitions.
	o2 := newRoleOwner(zap.NewNop())
	for i := range 3 * maxTransitions {
		o2.elected(lease.State{Role: lease.Role(i % 2), Reason: fmt.Sprint(i)})
	}
	if tr := o2.transitions(); len(tr) != maxTransitions || tr[len(tr)-1].Reason != fmt.Sprint(3*maxTransitions-1) {
		t.Errorf("%d transitions kept, last %+v", len(tr), tr[len(tr)-1])
	}
}

// TestPromotedDuringDrain: a node active again before its drain's hold
// ends keeps its clients' keep-alive connections (the drain is called off
// and must not turn keep-alives off behind the promotion).
func TestPromotedDuringDrain(t *testing.T) {
	a := startTestNode(t, "a", filepath.Join(t.TempDir(), "lease"), "",
		replace(`exit_delay = "50ms"`, `exit_delay = "3s"`), replace(`timeout = "1s"`, `timeout = "5s"`))
	waitFor(t, "a active", 5*time.Second, func() bool { return a.probe() == 200 })
	if err := a.elector.StepDown("test"); err != nil {
		t.Fatal(err)
	}
	// Alone, a is active again after its candidacy back-off (1s), within
	// the drain's hold (3s).
	waitFor(t, "a active again", 5*time.Second, func() bool { return a.probe() == 200 })
	waitFor(t, "the drain called off", 5*time.Second, func() bool {
		return a.logs.FilterMessage("drain called off: active again").Len() == 1
	})
	time.Sleep(3 * time.Second) // past the hold the drain would have ended
	res, err := http.Get("http://" + a.Addr("listen.http") + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Close {
		t.Error("a response carries Connection: close after the node was active again")
	}
	if tr := a.Status().Transitions; len(tr) < 2 || tr[len(tr)-1].From != "draining" || tr[len(tr)-1].To != "active" {
		t.Errorf("a's transitions %+v: want draining > active last", tr)
	}
}

// TestTransitionsInStatus: /status keeps the role's transitions, draining
// among them, each with the term and the holder, and each logged once.
func TestTransitionsInStatus(t *testing.T) {
	leaseFile := filepath.Join(t.TempDir(), "lease")
	a := startTestNode(t, "a", leaseFile, "") // drain.exit_delay 50ms
	waitFor(t, "a active", 5*time.Second, func() bool { return a.probe() == 200 })
	b := startTestNode(t, "b", leaseFile, "")
	waitFor(t, "b standby", 5*time.Second, func() bool { return b.Status().Role == "standby" })
	if err := a.elector.StepDown("test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b active", 5*time.Second, func() bool { return b.probe() == 200 })
	waitFor(t, "a's drain over", 5*time.Second, func() bool {
		tr := a.Status().Transitions
		return len(tr) > 0 && tr[len(tr)-1].From == "draining"
	})
	var path []string
	for _, tr := range a.Status().Transitions {
		path = append(path, tr.From+">"+tr.To)
	}
	got := strings.Join(path, " ")
	if !strings.Contains(got, ">active active>draining draining>") {
		t.Errorf("a's transitions %q: want active, then draining, then out of it", got)
	}
	tr := a.Status().Transitions
	drain := tr[len(tr)-2]
	if drain.To != "draining" || drain.Term != 1 || drain.Reason == "" {
		t.Errorf("the transition into draining: %+v", drain)
	}
	if n := a.logs.FilterMessage("role changed").FilterFieldKey("holder").Len(); n < 3 {
		t.Errorf("%d role changes logged with the holder, want every one", n)
	}
	if len(b.Status().Transitions) == 0 || b.Status().Transitions[len(b.Status().Transitions)-1].Holder != "b" {
		t.Errorf("b's last transition: %+v", b.Status().Transitions)
	}
}
