//go:build unix

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonproxy/baton/internal/azure/azuritetest"
)

// TestAzBlobPairAndStorageOutage: two baton processes on an Azurite lease.
// Exactly one is active; when storage goes away the active's probe turns
// 503 at its renew deadline (before the lease could expire), and when it
// returns exactly one node becomes active with the next term.
func TestAzBlobPairAndStorageOutage(t *testing.T) {
	skipShort(t)
	az := azuritetest.Start(t)
	t.Setenv("BATON_TEST_CS", az.ConnectionString())
	appA, appB := startApp(t, "app-a"), startApp(t, "app-b")
	a := startNode(t, "node-a", nodeOpts{azurite: az.URL, backendPort: appA.port})
	waitProbe(t, a, 200, 15*time.Second)
	b := startNode(t, "node-b", nodeOpts{azurite: az.URL, backendPort: appB.port})
	waitRole(t, b, "standby", 10*time.Second)

	ctx, stopWatch := context.WithCancel(context.Background())
	watch := watchProbes(ctx, a, b)
	defer func() { stopWatch(); watch.check(t) }()

	st := a.status(t)
	if st.Holder == nil || st.Holder.Node != "node-a" || st.Term == 0 {
		t.Fatalf("holder record: %+v term %d", st.Holder, st.Term)
	}
	if sb := b.status(t); sb.Holder == nil || sb.Holder.Node != "node-a" {
		t.Fatalf("node-b does not see node-a as holder: %+v", sb.Holder)
	}
	term := st.Term

	stopped := time.Now()
	az.Stop()
	// renew_deadline 5s after the last renew (at most 1s before the stop).
	took := waitProbe(t, a, 503, 8*time.Second)
	t.Logf("FIGURE storage outage: active probe 503 %v after storage stopped (renew_deadline 5s, lease 15s)", took.Round(time.Millisecond))
	if took > 5*time.Second+500*time.Millisecond {
		t.Errorf("active still up %v after storage went away, want <= renew_deadline", took)
	}
	if code, _ := b.probeCode(); code == 200 {
		t.Error("node-b active without storage")
	}
	if time.Since(stopped) < 6*time.Second {
		time.Sleep(6*time.Second - time.Since(stopped))
	}
	az.Restart()
	deadline := time.Now().Add(20 * time.Second)
	var active *batonNode
	for active == nil && time.Now().Before(deadline) {
		for _, n := range []*batonNode{a, b} {
			if code, _ := n.probeCode(); code == 200 {
				active = n
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if active == nil {
		t.Fatal("no node active after storage returned")
	}
	if got := active.status(t).Term; got != term+1 {
		t.Errorf("term after the outage = %d, want %d", got, term+1)
	}
}

func TestCheckConfigReadsStorage(t *testing.T) {
	skipShort(t)
	az := azuritetest.Start(t)
	n := &batonNode{http: 18080, probe: 18081, admin: 18082}
	path := filepath.Join(t.TempDir(), "az.toml")
	os.WriteFile(path, []byte(nodeConfig("ok", n, nodeOpts{azurite: az.URL, backendPort: 8080})), 0o600)

	t.Setenv("BATON_TEST_CS", az.ConnectionString())
	p := start(t, "check", "baton", "check-config", "-config", path)
	if code := p.Wait(t, 20*time.Second); code != 0 || !strings.Contains(p.Output(), "lease storage reachable") {
		t.Fatalf("exit %d:\n%s", code, p.Output())
	}

	bad := strings.Replace(az.ConnectionString(), "AccountKey=", "AccountKey=AAAA", 1)
	t.Setenv("BATON_TEST_CS", bad)
	p = start(t, "check-bad", "baton", "check-config", "-config", path)
	if code := p.Wait(t, 20*time.Second); code != 2 {
		t.Fatalf("bad key: exit %d, want 2:\n%s", code, p.Output())
	}
	out := p.Output()
	if !strings.Contains(out, "lease storage") || strings.Contains(out, "AAAA") {
		t.Errorf("bad key message:\n%s", out)
	}
}
