//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The drill's own settings in scenarios 19 and 20: 2 s before the step-down, 3 s
// after, 100 requests/s.
const (
	drillBefore = 2 * time.Second
	drillAfter  = 3 * time.Second
)

// drillStatus is the part of /status the drill leaves behind
// (cmd/baton/internal/node.DrillResult, which the harness may not import).
type drillStatus struct {
	LastDrill *struct {
		Node         string         `json:"node"`
		StepDown     time.Time      `json:"step_down_at"`
		Requests     int            `json:"requests"`
		Failed       int            `json:"failed"`
		Statuses     map[string]int `json:"failed_statuses"`
		NewConns     int            `json:"failed_on_new_connections"`
		LongestGapMS float64        `json:"longest_gap_ms"`
		IdentifiedBy string         `json:"identified_by"`
		OldActive    string         `json:"old_active"`
		NewActive    string         `json:"new_active"`
		NewActiveMS  *float64       `json:"new_active_after_ms"`
		OK           bool           `json:"ok"`
		Problems     []string       `json:"problems"`
	} `json:"last_drill"`
}

// 19. `baton drill` on node-a (its -config: admin.listen and the token
// file from there), a planned step-down with the peer link, through
// HAProxy, with the load client running beside it: the drill exits 0,
// counts no failed request, sees node-b answer under the new term (the
// Baton-Node header, backend.identify_header), and leaves its result in
// node-a's /status; the load client's own figures (the table's row) must
// agree: nothing failed.
func TestLB19Drill(t *testing.T) {
	gate(t, true)
	drillScenario(t, "19 baton drill, peer link", true)
}

// 20. The same without the peer link: node-b takes the lease at its next
// retry (up to 500 ms), node-a holds the requests meanwhile. The load
// client, 8 keep-alive connections, loses nothing (row 1). The drill sends
// at a steady rate whatever the answers take, so held requests make it
// open new connections, and those that reach HAProxy while it has no
// server up (node-a seen down, node-b not yet up) are closed unanswered,
// as a new visitor's would be. Asserted: no answer from baton is an error,
// only connections HAProxy could not place fail, and the drill's exit
// code says whether any did.
func TestLB20DrillNoLink(t *testing.T) {
	gate(t, false)
	drillScenario(t, "20 baton drill, no peer link", false)
}

func drillScenario(t *testing.T, name string, link bool) {
	t.Helper()
	s := begin(t, name, phaseAfterStandbyCheck, topoOpts{peerLink: link, identify: true}, 60*time.Second)
	// The drill steps down -before after it starts: start it so that the
	// step-down falls at the scenario's phase, as rows 1 and 11 do.
	at := s.eventAt(drillBefore + 300*time.Millisecond)
	sleepUntil(at.Add(-drillBefore))
	cli := startProc(t, "baton drill", nil, false, bin("baton"), "drill", "-config", s.top.a.configPath,
		"-url", s.top.lb.url()+"/", "-rate", "100", "-before", drillBefore.String(), "-after", drillAfter.String())
	code := cli.Wait(t, drillBefore+drillAfter+30*time.Second)
	t.Logf("baton drill exited %d:\n%s", code, cli.Output())
	_, _, body, err := httpGet(s.top.a.adminURL() + "/status")
	if err != nil {
		t.Fatalf("node-a status: %v", err)
	}
	var st drillStatus
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.LastDrill == nil {
		t.Fatalf("node-a's /status has no last_drill (%v): %s", err, body)
	}
	d := st.LastDrill
	s.w.Event = d.StepDown
	t.Logf("event (the drill's step-down) at %s", s.w.Event.Format("15:04:05.000"))
	sum := s.finish(retryInterval+s.top.lbInt+2*time.Second, 1500*time.Millisecond)
	checkPlanned(s, sum, func() []Request { return nil })

	newActive := "none"
	if d.NewActiveMS != nil {
		newActive = fmt.Sprintf("%.0f ms", *d.NewActiveMS)
	}
	t.Logf("drill: %d requests, %d failed, longest gap %.0f ms, new active %s after %s; load client: %d requests, %d failed, longest gap %v, recovery %v",
		d.Requests, d.Failed, d.LongestGapMS, d.NewActive, newActive, sum.Requests, sum.Failed,
		sum.Outage.Round(time.Millisecond), sum.Recovery.Round(time.Millisecond))
	oldTerm, newTerm := s.w.OldTerm, s.w.OldTerm+1
	if want := map[bool]int{true: 0, false: 1}[d.Failed == 0]; code != want {
		t.Errorf("baton drill exited %d with %d failed requests, want %d", code, d.Failed, want)
	}
	switch {
	case link && (!d.OK || d.Failed != 0 || len(d.Problems) != 0):
		t.Errorf("drill result: ok %v, %d failed, problems %q", d.OK, d.Failed, d.Problems)
	case len(d.Statuses) != 0 || d.NewConns != d.Failed:
		t.Errorf("drill failures: statuses %v, %d of %d on new connections; want only new connections HAProxy could not place", d.Statuses, d.NewConns, d.Failed)
	case d.Failed > 0 && sum.LBNoServer == 0:
		t.Errorf("%d drill requests failed although HAProxy always had a server up", d.Failed)
	case d.Node != "node-a" || d.IdentifiedBy != "Baton-Node":
		t.Errorf("drill stepped down %q, identified by %q; want node-a by Baton-Node", d.Node, d.IdentifiedBy)
	case d.OldActive != fmt.Sprintf("node-a; term=%d", oldTerm) || d.NewActive != fmt.Sprintf("node-b; term=%d", newTerm):
		t.Errorf("drill saw %q then %q, want node-a; term=%d then node-b; term=%d", d.OldActive, d.NewActive, oldTerm, newTerm)
	case d.NewActiveMS == nil || time.Duration(*d.NewActiveMS*float64(time.Millisecond)) > retryInterval+s.top.lbInt+2*time.Second:
		t.Errorf("new active after %s, want within %v", newActive, retryInterval+s.top.lbInt+2*time.Second)
	case d.Requests < int((drillBefore+drillAfter).Seconds()*100*0.8):
		t.Errorf("drill sent only %d requests in %v at 100/s", d.Requests, drillBefore+drillAfter)
	}
	// With the peer link the drill and the load client watched the same
	// quick switch: neither saw a gap anywhere near a second.
	if link && (d.LongestGapMS > 1000 || sum.Outage > time.Second) {
		t.Errorf("longest gap: drill %.0f ms, load client %v; want both well under a second with the peer link", d.LongestGapMS, sum.Outage)
	}
	for _, want := range []string{"new active", "node-b; term=", "result"} {
		if !strings.Contains(cli.Output(), want) {
			t.Errorf("drill output lacks %q", want)
		}
	}
}
