package node

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTransitionsInStatus: /status keeps the role's transitions, the
// node's own (draining) beside the elector's, each with the term and the
// holder, and each logged once.
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
