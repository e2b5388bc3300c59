//go:build linux

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/batonproxy/baton/internal/azure/schedevents/imdstest"
)

// The row of Azure's scheduled events (cmd/baton/internal/node:
// schedevents.go): a maintenance Azure announces for the active's VM is a
// planned switchover.

// azureTOML starts the metadata service of VM vm and returns the [azure]
// table that points a node at it.
func azureTOML(t *testing.T, imds *imdstest.Events, vm string) string {
	return fmt.Sprintf("[azure]\nscheduled_events = true\nimds_url = %q\n", imds.Serve(t, vm))
}

// 18. Azure announces a Reboot of node-a's VM (15 minutes ahead) while
// node-a is active: node-a hands the role to node-b over the peer link, as
// `baton step-down -to node-b` would, at its next poll of the metadata
// service (every second), and stays out of candidacy.
func TestLB18ScheduledReboot(t *testing.T) {
	gate(t, false)
	imds := &imdstest.Events{}
	s := begin(t, "18 announced Reboot of node-a's VM, peer link", phaseAfterStandbyCheck, topoOpts{peerLink: true, imds: imds}, 60*time.Second)
	slow := s.slowAtEvent()
	s.event()
	imds.Set(imdstest.Event("C7061BAC-AFDC-4513-B24B-AA5F13A16123", "Reboot", "Scheduled", "vm-a"))
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
