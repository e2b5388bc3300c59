package node

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/batonproxy/baton/internal/azure/schedevents/imdstest"

	"github.com/batonproxy/baton/internal/freeport"
)

// fastSched shortens the watcher's timing for a test.
func fastSched(t *testing.T, wait time.Duration) {
	poll, tick, retry, w := schedPoll, schedTick, schedRetry, schedWait
	schedPoll, schedTick, schedRetry, schedWait = 50*time.Millisecond, 50*time.Millisecond, 300*time.Millisecond, wait
	t.Cleanup(func() { schedPoll, schedTick, schedRetry, schedWait = poll, tick, retry, w })
}

func azureTOML(imds string, approve bool) string {
	return fmt.Sprintf("[azure]\nscheduled_events = true\nimds_url = %q\napprove = %t\n", imds, approve)
}

// linkTOMLs are the [peer] tables of two nodes linked to each other.
func linkTOMLs(t *testing.T) (string, string) {
	t.Helper()
	ports, err := freeport.Ports(2)
	if err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("pair-secret\n"), 0o600)
	tbl := func(listen, peer int) string {
		return fmt.Sprintf("[peer]\nlisten = \"127.0.0.1:%d\"\npeers = [\"127.0.0.1:%d\"]\nsecret_file = %q\ntimeout = \"300ms\"\n", listen, peer, secret)
	}
	return tbl(ports[0], ports[1]), tbl(ports[1], ports[0])
}

func (tn *testNode) admin(t *testing.T, path string) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+tn.Addr("admin.listen")+path, nil)
	req.Header.Set("Authorization", "Bearer tok")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("%s: %d %s", path, res.StatusCode, b)
	}
}

func (tn *testNode) peerKnown(name string) bool {
	for _, p := range tn.link.Peers() {
		if p.Node == name && p.Reachable {
			return true
		}
	}
	return false
}

func (tn *testNode) logCount(msg string) int { return tn.logs.FilterMessageSnippet(msg).Len() }

// TestScheduledRebootHandsOver: a Reboot announced for the active node's VM
// hands the role to the peer over the link; the node stays out of candidacy
// (past its candidacy back-off, through Started) until the event is gone,
// approves it once drained, then is a standby again. The peer, whose VM
// the event does not name, does nothing.
func TestScheduledRebootHandsOver(t *testing.T) {
	fastSched(t, 0)
	leaseFile := filepath.Join(t.TempDir(), "lease")
	var imds imdstest.Events
	la, lb := linkTOMLs(t)
	a := startTestNode(t, "a", leaseFile, la+azureTOML(imds.Serve(t, "vm-a"), true))
	waitFor(t, "a active", 5*time.Second, func() bool { return a.probe() == 200 })
	b := startTestNode(t, "b", leaseFile, lb+azureTOML(imds.Serve(t, "VM-B"), true))
	waitFor(t, "b standby", 5*time.Second, func() bool { return b.Status().Role == "standby" })
	waitFor(t, "peers known", 5*time.Second, func() bool { return a.peerKnown("b") && b.peerKnown("a") })
	term := a.Status().Term

	imds.Set(imdstest.Event("E1", "Reboot", "Scheduled", "vm-a"))
	waitFor(t, "b active", 5*time.Second, func() bool { return b.probe() == 200 })
	if st := b.Status(); st.Term != term+1 || !strings.Contains(st.Reason, "handed over by a") {
		t.Errorf("b: term %d (want %d), reason %q", st.Term, term+1, st.Reason)
	}
	waitFor(t, "a in maintenance", 2*time.Second, func() bool { return a.Status().Role == "maintenance" })
	st := a.Status()
	if len(st.ScheduledEvents) != 1 || st.ScheduledEvents[0].ID != "E1" || st.ScheduledEvents[0].Type != "Reboot" ||
		!strings.Contains(st.ScheduledEvents[0].Handling, "handed over to b") {
		t.Errorf("a's scheduled events: %+v", st.ScheduledEvents)
	}
	if n := len(b.Status().ScheduledEvents); n != 0 {
		t.Errorf("b shows %d scheduled events for vm-a's event", n)
	}
	if a.logCount("planned switchover, handed over to b") != 1 {
		t.Errorf("a did not log the switchover once")
	}
	// Approved once drained (exit_delay 50ms): exactly this event.
	waitFor(t, "approval", 5*time.Second, func() bool { return len(imds.Approved()) == 1 })
	if got := imds.Approved()[0]; !strings.Contains(got, `"StartRequests":[{"EventId":"E1"}]`) {
		t.Errorf("approval body %s", got)
	}
	if d := a.Status().Drain; d.Drains < 1 || d.Draining {
		t.Errorf("approved before the drain ended: %+v", d)
	}

	// Past the candidacy back-off (1s) and through Started, a stays out.
	time.Sleep(1500 * time.Millisecond)
	imds.Set(imdstest.Event("E1", "Reboot", "Started", "vm-a"))
	time.Sleep(300 * time.Millisecond)
	if r := a.Status().Role; r != "maintenance" || b.probe() != 200 {
		t.Fatalf("during the event: a %s, b probe %d", r, b.probe())
	}

	imds.Set()
	waitFor(t, "a back in candidacy", 3*time.Second, func() bool {
		st := a.Status()
		return st.Role == "standby" && !st.Maintenance && len(st.ScheduledEvents) == 0
	})
	if b.probe() != 200 {
		t.Error("b lost the role when a's event ended")
	}
	fams := scrape(t, a.Node)
	for action, want := range map[string]float64{"handover": 1, "hold": 1, "approve": 1, "release": 1, "step_down": -1, "stay_active": -1} {
		if got := gauge(fams, "baton_scheduled_event_actions_total", "action", action); got != want {
			t.Errorf("actions{%s} = %v, want %v", action, got, want)
		}
	}
	if got := gauge(fams, "baton_scheduled_events_pending", "", ""); got != 0 {
		t.Errorf("pending gauge %v", got)
	}
	if got := gauge(fams, "baton_scheduled_events_imds_up", "", ""); got != 1 {
		t.Errorf("imds_up gauge %v", got)
	}
	if len(imds.Approved()) != 1 {
		t.Errorf("approvals: %q", imds.Approved())
	}
}

// TestScheduledEventKeepsOperatorMaintenance: without the peer link the
// active steps down; maintenance turned on by the operator during the event
// stays on after it; and an operator's maintenance off ends the watcher's
// hold for the events pending then.
func TestScheduledEventKeepsOperatorMaintenance(t *testing.T) {
	fastSched(t, 0)
	leaseFile := filepath.Join(t.TempDir(), "lease")
	var imds imdstest.Events
	a := startTestNode(t, "a", leaseFile, azureTOML(imds.Serve(t, "vm-a"), false))
	waitFor(t, "a active", 5*time.Second, func() bool { return a.probe() == 200 })
	b := startTestNode(t, "b", leaseFile, azureTOML(imds.Serve(t, "vm-b"), false))
	waitFor(t, "b standby", 5*time.Second, func() bool { return b.Status().Role == "standby" })

	imds.Set(imdstest.Event("E1", "Redeploy", "Scheduled", "vm-a"))
	waitFor(t, "b active", 5*time.Second, func() bool { return b.probe() == 200 })
	waitFor(t, "a in maintenance", 2*time.Second, func() bool { return a.Status().Role == "maintenance" })
	if a.logCount("planned switchover, stepped down") != 1 {
		t.Error("a did not log its step-down")
	}
	if st := a.Status(); !strings.Contains(st.Reason, "maintenance") {
		t.Logf("a's reason: %q", st.Reason)
	}

	// The operator wants a out too; the event ends; a stays out.
	a.admin(t, "/maintenance?on=true")
	imds.Set()
	waitFor(t, "event gone", 3*time.Second, func() bool { return len(a.Status().ScheduledEvents) == 0 })
	waitFor(t, "release logged", 2*time.Second, func() bool { return a.logCount("are over: back in candidacy") == 1 })
	time.Sleep(300 * time.Millisecond)
	if st := a.Status(); !st.Maintenance || st.Role != "maintenance" {
		t.Fatalf("the watcher cleared the operator's maintenance: %s", st.Role)
	}
	a.admin(t, "/maintenance?on=false")
	waitFor(t, "a standby", 3*time.Second, func() bool { return a.Status().Role == "standby" })

	// A new event holds a (a standby now) out; the operator's maintenance
	// off ends that hold and the event is not acted on again.
	imds.Set(imdstest.Event("E2", "Freeze", "Scheduled", "vm-a"))
	waitFor(t, "a held", 3*time.Second, func() bool { return a.Status().Role == "maintenance" })
	a.admin(t, "/maintenance?on=false")
	waitFor(t, "a standby again", 3*time.Second, func() bool { return a.Status().Role == "standby" })
	time.Sleep(300 * time.Millisecond)
	st := a.Status()
	if st.Role != "standby" || len(st.ScheduledEvents) != 1 || !strings.Contains(st.ScheduledEvents[0].Handling, "ended by the operator") {
		t.Fatalf("after the operator's maintenance off: %s %+v", st.Role, st.ScheduledEvents)
	}
	if a.logCount("the hold for the pending Azure scheduled events ends") != 1 {
		t.Error("the operator's override was not logged once")
	}
	if b.probe() != 200 {
		t.Error("b lost the role")
	}
}

// TestScheduledEventStaysActiveWithoutSuccessor: when the peer link says the
// peer cannot take over, the active stays active and says so once; when
// the peer can again, it hands over.
func TestScheduledEventStaysActiveWithoutSuccessor(t *testing.T) {
	fastSched(t, 0)
	leaseFile := filepath.Join(t.TempDir(), "lease")
	var imds imdstest.Events
	la, lb := linkTOMLs(t)
	a := startTestNode(t, "a", leaseFile, la+azureTOML(imds.Serve(t, "vm-a"), false))
	waitFor(t, "a active", 5*time.Second, func() bool { return a.probe() == 200 })
	b := startTestNode(t, "b", leaseFile, lb+azureTOML(imds.Serve(t, "vm-b"), false))
	waitFor(t, "b standby", 5*time.Second, func() bool { return b.Status().Role == "standby" })
	b.admin(t, "/maintenance?on=true")
	waitFor(t, "a sees b in maintenance", 5*time.Second, func() bool {
		for _, p := range a.link.Peers() {
			if p.Node == "b" && p.Role == "maintenance" {
				return true
			}
		}
		return false
	})

	imds.Set(imdstest.Event("E1", "Reboot", "Scheduled", "vm-a"))
	waitFor(t, "stay logged", 3*time.Second, func() bool { return a.logCount("staying active, no other node can take over") == 1 })
	time.Sleep(500 * time.Millisecond) // ten ticks
	if a.probe() != 200 || a.logCount("staying active") != 1 {
		t.Fatalf("a: probe %d, %d stay lines", a.probe(), a.logCount("staying active"))
	}
	st := a.Status()
	if len(st.ScheduledEvents) != 1 || !strings.Contains(st.ScheduledEvents[0].Handling, "b: maintenance") {
		t.Errorf("a's scheduled events: %+v", st.ScheduledEvents)
	}

	b.admin(t, "/maintenance?on=false")
	waitFor(t, "b active", 5*time.Second, func() bool { return b.probe() == 200 })
	waitFor(t, "a held", 2*time.Second, func() bool { return a.Status().Role == "maintenance" })
}

// TestScheduledEventNoTakeover: without the peer link and without another
// node, the stepped-down node ends its hold after the wait and serves
// again, and does not step down a second time for the same event.
func TestScheduledEventNoTakeover(t *testing.T) {
	fastSched(t, 700*time.Millisecond)
	leaseFile := filepath.Join(t.TempDir(), "lease")
	var imds imdstest.Events
	a := startTestNode(t, "a", leaseFile, azureTOML(imds.Serve(t, "vm-a"), true))
	waitFor(t, "a active", 5*time.Second, func() bool { return a.probe() == 200 })

	imds.Set(imdstest.Event("E1", "Reboot", "Scheduled", "vm-a", "vm-b"))
	waitFor(t, "a in maintenance", 3*time.Second, func() bool { return a.Status().Role == "maintenance" })
	waitFor(t, "a active again", 5*time.Second, func() bool { return a.probe() == 200 })
	if a.logCount("no other node is active, ending the hold") != 1 {
		t.Error("the end of the hold was not logged")
	}
	waitFor(t, "stay logged", 2*time.Second, func() bool { return a.logCount("staying active") == 1 })
	time.Sleep(500 * time.Millisecond)
	if a.probe() != 200 || a.logCount("planned switchover") != 1 {
		t.Fatalf("a stepped down again: probe %d, %d switchovers", a.probe(), a.logCount("planned switchover"))
	}
	// The event names vm-b too: never approved.
	if got := imds.Approved(); len(got) != 0 {
		t.Errorf("approved an event that names another VM: %q", got)
	}
}

// TestScheduledEventsNeedRestart: [azure] changes are reported by a reload
// as needing a restart, and the running node keeps its watcher as it was.
func TestScheduledEventsNeedRestart(t *testing.T) {
	leaseFile := filepath.Join(t.TempDir(), "lease")
	a := startTestNode(t, "a", leaseFile, "")
	waitFor(t, "a active", 5*time.Second, func() bool { return a.probe() == 200 })
	body, err := os.ReadFile(a.path)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(a.path, append(body, azureTOML("http://127.0.0.1:9", false)...), 0o600)
	res, err := a.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(res.NotApplied, "azure") || a.sched != nil {
		t.Errorf("reload: %+v, watcher %v", res, a.sched)
	}
	if a.live.Load().Azure.WatchScheduledEvents() {
		t.Error("the live configuration took the new [azure]")
	}
}
