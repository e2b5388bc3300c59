//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// The row of Azure's scheduled events (cmd/baton/internal/node:
// schedevents.go): a maintenance Azure announces for the active's VM is a
// planned switchover.

// fakeIMDS is Azure's Instance Metadata Service as the nodes' VMs see it:
// one scheduled events document for both (Azure delivers an availability
// set's events to all its VMs), and each VM's own name.
type fakeIMDS struct {
	mu     sync.Mutex
	inc    int
	events []map[string]any
}

func (f *fakeIMDS) set(events ...map[string]any) {
	f.mu.Lock()
	f.inc++
	f.events = events
	f.mu.Unlock()
}

// azureTOML starts the metadata service of VM vm and returns the [azure]
// table that points a node at it.
func (f *fakeIMDS) azureTOML(t *testing.T, vm string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Metadata") != "true" {
			http.Error(w, "Required metadata header not specified", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		switch r.URL.Path {
		case "/metadata/instance/compute/name":
			io.WriteString(w, vm)
		case "/metadata/scheduledevents":
			evs := f.events
			if evs == nil {
				evs = []map[string]any{}
			}
			json.NewEncoder(w).Encode(map[string]any{"DocumentIncarnation": f.inc, "Events": evs})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return fmt.Sprintf("[azure]\nscheduled_events = true\nimds_url = %q\n", srv.URL)
}

// 18. Azure announces a Reboot of node-a's VM (15 minutes ahead) while
// node-a is active: node-a hands the role to node-b over the peer link, as
// `baton step-down -to node-b` would, at its next poll of the metadata
// service (every second), and stays out of candidacy.
func TestLB18ScheduledReboot(t *testing.T) {
	gate(t, false)
	imds := &fakeIMDS{}
	s := begin(t, "18 announced Reboot of node-a's VM, peer link", phaseAfterStandbyCheck, topoOpts{peerLink: true, imds: imds}, 60*time.Second)
	slow := s.slowAtEvent()
	s.event()
	imds.set(map[string]any{"EventId": "C7061BAC-AFDC-4513-B24B-AA5F13A16123", "EventType": "Reboot",
		"ResourceType": "VirtualMachine", "Resources": []string{"vm-a"}, "EventStatus": "Scheduled",
		"NotBefore":   time.Now().Add(15 * time.Minute).UTC().Format(http.TimeFormat),
		"Description": "Host server is undergoing maintenance.", "EventSource": "Platform", "DurationInSeconds": -1})
	// The first answer: one poll (1s) + a handover + P (+2s slack).
	sum := s.finish(time.Second+s.top.lbInt+2*time.Second, 1500*time.Millisecond)
	checkPlanned(s, sum, slow)
	if st := s.top.b.status(t); !strings.Contains(st.Reason, "handed over by node-a") {
		t.Errorf("node-b: %s (%s), want handed over by node-a", st.Role, st.Reason)
	}
	// Out of candidacy once its drain (exit delay) is over.
	deadline := time.Now().Add(exitDelay(s.top.lbInt) + drainTimeout)
	role, _ := s.top.a.roleTerm(t)
	for role != "maintenance" && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		role, _ = s.top.a.roleTerm(t)
	}
	if role != "maintenance" {
		t.Errorf("node-a is %s during the event, want maintenance", role)
	}
}
