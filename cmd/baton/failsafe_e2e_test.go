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

	"github.com/batonproxy/baton/internal/azure/azuritetest"
)

// TestFailsafeThroughAStorageOutage: two nodes on Azurite with the peer
// link and lease.failsafe. Azurite stops for twice the renew deadline: the
// active keeps answering 200 throughout (its peer promised to stand by),
// the standby never does, and when the storage returns the active renews
// under the same term. Then with the peer gone as well, the active demotes
// at its renew deadline as without failsafe.
func TestFailsafeThroughAStorageOutage(t *testing.T) {
	skipShort(t)
	az := azuritetest.Start(t)
	t.Setenv("BATON_TEST_CS", az.ConnectionString())
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("pair-secret\n"), 0o600)
	pa, pb := freePort(t), freePort(t)
	link := func(self, other int) string {
		return fmt.Sprintf("[peer]\nlisten = \"127.0.0.1:%d\"\npeers = [\"127.0.0.1:%d\"]\nsecret_file = %q\ntimeout = \"300ms\"\n", self, other, secret)
	}
	appA, appB := startApp(t, "app-a"), startApp(t, "app-b")
	a := startNode(t, "node-a", nodeOpts{azurite: az.URL, backendPort: appA.port, failsafe: true, extra: link(pa, pb)})
	waitProbe(t, a, 200, 15*time.Second)
	b := startNode(t, "node-b", nodeOpts{azurite: az.URL, backendPort: appB.port, failsafe: true, extra: link(pb, pa)})
	waitRole(t, b, "standby", 10*time.Second)
	waitPeer(t, a, "node-b")
	ctx, stopWatch := context.WithCancel(context.Background())
	watch := watchProbes(ctx, a, b)
	defer func() { stopWatch(); watch.check(t) }()
	term := a.status(t).Term

	az.Stop()
	stopped := time.Now()
	down := 0
	for time.Since(stopped) < 12*time.Second { // renew_deadline is 5s
		if code, _ := a.probeCode(); code != 200 {
			down++
		}
		if code, _ := b.probeCode(); code == 200 {
			t.Fatal("node-b serves during the outage")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if down > 0 {
		t.Errorf("node-a's probe was not 200 %d times during a 12s storage outage with failsafe", down)
	}
	st, sb := a.status(t), b.status(t)
	if !st.Failsafe || st.Role != "failsafe" || st.Term != term || sb.PromisedTo != "node-a" {
		t.Errorf("during the outage: node-a %s failsafe %v term %d (want %d), node-b promised to %q", st.Role, st.Failsafe, st.Term, term, sb.PromisedTo)
	}
	if code, body, _ := a.get("/"); code != 200 || !strings.Contains(body, "instance=app-a") {
		t.Errorf("request through node-a during the outage: %d %q", code, body)
	}
	az.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for a.status(t).Failsafe && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if st := a.status(t); st.Failsafe || st.Role != "active" || st.Term != term {
		t.Fatalf("after the outage: node-a %s failsafe %v term %d, want active without failsafe, term %d", st.Role, st.Failsafe, st.Term, term)
	}
	if tr := a.status(t).Transitions; len(tr) < 2 || tr[len(tr)-2].To != "failsafe" || tr[len(tr)-1].From != "failsafe" || tr[len(tr)-1].To != "active" {
		t.Errorf("node-a's transitions %+v: want active > failsafe > active last", tr)
	}
	t.Logf("FIGURE failsafe: node-a served through a 12s storage outage (0 probe failures), same term %d afterwards", term)

	// The peer is gone too: no promise, demotion at the renew deadline.
	b.Kill()
	az.Stop()
	took := waitProbe(t, a, 503, 10*time.Second)
	if took > 5*time.Second+time.Second {
		t.Errorf("node-a answered 200 %v after storage and peer were gone, want <= renew_deadline", took)
	}
	az.Restart()
}
