//go:build unix

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonproxy/baton/internal/azure/schedevents/imdstest"
)

// TestScheduledRebootSwitchesOver: Azure announces a Reboot of node-a's VM
// while node-a is active; over the peer link node-a hands the role to
// node-b (no failed request through node-a, which forwards), stays out of
// candidacy until the event is gone, and then stands by.
func TestScheduledRebootSwitchesOver(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("pair-secret\n"), 0o600)
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("test-token\n"), 0o600)
	var imds imdstest.Events
	azure := func(vm string) string {
		return fmt.Sprintf("[azure]\nscheduled_events = true\nimds_url = %q\n", imds.Serve(t, vm))
	}
	pa, pb := freePort(t), freePort(t)
	appA, appB := startApp(t, "app-a"), startApp(t, "app-b")
	// retry 5s: only the handover explains node-b taking over at once.
	oa := nodeOpts{leaseFile: filepath.Join(dir, "lease.json"), tokenFile: token, backendPort: appA.port,
		retry: "5s", extra: linkTOML(pa, pb, secret) + azure("vm-a")}
	ob := oa
	ob.backendPort, ob.extra = appB.port, linkTOML(pb, pa, secret)+azure("VM-B")
	a := startNode(t, "node-a", oa)
	waitProbe(t, a, 200, 10*time.Second)
	b := startNode(t, "node-b", ob)
	waitRole(t, b, "standby", 10*time.Second)
	waitPeer(t, a, "node-b")
	waitPeer(t, b, "node-a")
	term := a.status(t).Term

	ctx, stop := context.WithCancel(context.Background())
	watch := watchProbes(ctx, a, b)
	defer func() { stop(); watch.check(t) }()
	lctx, lcancel := context.WithCancel(context.Background())
	defer lcancel()
	aURL := fmt.Sprintf("http://127.0.0.1:%d", a.http)
	done := make(chan []result)
	go func() { done <- load(lctx, 4, 100000, func() string { return aURL }, "/") }()
	time.Sleep(300 * time.Millisecond)

	t0 := time.Now()
	imds.Set(imdstest.Event("5DD55B64-45AD-49D3-BBC9-F57D4EA97BD7", "Reboot", "Scheduled", "vm-a"))
	waitProbe(t, b, 200, 5*time.Second)
	took := time.Since(t0)
	t.Logf("FIGURE announced Reboot: node-b active %v after the event appeared (IMDS polled every 1s, retry_interval 5s)", took.Round(time.Millisecond))
	waitRole(t, a, "maintenance", 3*time.Second)
	time.Sleep(time.Second) // load across the switchover and after
	lcancel()
	rs := <-done
	n, first := failures(rs)
	t.Logf("FIGURE %d requests through node-a across the switchover, %d failed", len(rs), n)
	if n > 0 || len(rs) < 100 {
		t.Errorf("%d of %d requests through node-a failed across the switchover; first: %s", n, len(rs), first)
	}
	sb := b.status(t)
	if sb.Term != term+1 || !strings.Contains(sb.Reason, "handed over by node-a") {
		t.Errorf("node-b: %s term %d (want %d), %q", sb.Role, sb.Term, term+1, sb.Reason)
	}
	sa := a.status(t)
	if len(sa.ScheduledEvents) != 1 || sa.ScheduledEvents[0].Type != "Reboot" || !strings.Contains(sa.ScheduledEvents[0].Handling, "handed over to node-b") {
		t.Errorf("node-a's /status scheduled_events: %+v", sa.ScheduledEvents)
	}
	cli := start(t, "status", "baton", "status", "-admin", fmt.Sprintf("http://127.0.0.1:%d", a.admin))
	cli.Wait(t, 10*time.Second)
	if out := cli.Output(); !strings.Contains(out, "azure event") || !strings.Contains(out, "Reboot 5DD55B64-45AD-49D3-BBC9-F57D4EA97BD7 (Scheduled") {
		t.Errorf("baton status does not show the event:\n%s", out)
	}

	// Past node-a's candidacy back-off (2s) it stays out; the event ends.
	time.Sleep(1500 * time.Millisecond)
	if _, role := a.probeCode(); role != "maintenance" {
		t.Fatalf("node-a during the event: %s, want maintenance", role)
	}
	imds.Set()
	waitRole(t, a, "standby", 5*time.Second)
	if code, _ := b.probeCode(); code != 200 {
		t.Error("node-b lost the role when node-a's event ended")
	}
	for _, want := range []string{"planned switchover, handed over to node-b", "step-down to node-b requested by Azure scheduled event Reboot", "are over: back in candidacy"} {
		if !strings.Contains(a.Output(), want) {
			t.Errorf("node-a's log lacks %q", want)
		}
	}
	if strings.Contains(b.Output(), "planned switchover") {
		t.Error("node-b acted on node-a's event")
	}
}
