//go:build unix

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSecondRunIsRefused: a second `baton run` of one configuration exits 1
// naming the instance lock file and the running process's PID.
func TestSecondRunIsRefused(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	appA := startApp(t, "app-a")
	a := startNode(t, "node-a", nodeOpts{leaseFile: filepath.Join(dir, "lease.json"), backendPort: appA.port})
	second := start(t, "second", "baton", "run", "-config", a.configPath)
	if code := second.Wait(t, 10*time.Second); code != 1 {
		t.Fatalf("second run exited %d, want 1: %s", code, second.Output())
	}
	out := second.Output()
	if !strings.Contains(out, filepath.Join(dir, "baton-node-a-")) || !strings.Contains(out, "PID "+strconv.Itoa(a.Pid())) {
		t.Errorf("the refusal does not name the lock file and PID %d:\n%s", a.Pid(), out)
	}
	if code, _ := a.probeCode(); code != 200 {
		t.Errorf("the first process's probe answers %d after the refused start", code)
	}
}

// killAndRestart kills the active node with SIGKILL, restarts it on the same
// ports and configuration after pause, and returns the kill time.
func killAndRestart(t *testing.T, n *batonNode, o nodeOpts, pause time.Duration) time.Time {
	t.Helper()
	n.Kill()
	killed := time.Now()
	time.Sleep(pause)
	startNodeWith(t, n, 0, o)
	return killed
}

// TestKillNineRestartTakesOver: the active is killed with SIGKILL and
// restarted: it takes its own lease over at once (a new term) instead of
// waiting 15s for the expiry, and the standby never serves.
func TestKillNineRestartTakesOver(t *testing.T) {
	skipShort(t)
	p := startPair(t, nodeOpts{})
	ctx, stop := context.WithCancel(context.Background())
	watch := watchProbes(ctx, p.a, p.b)
	defer func() { stop(); watch.check(t) }()
	term := p.a.status(t).Term

	o := nodeOpts{leaseFile: filepath.Join(filepath.Dir(p.token), "lease.json"), backendPort: p.appA.port, tokenFile: p.token}
	killed := killAndRestart(t, p.a, o, 200*time.Millisecond)
	waitProbe(t, p.a, 200, 10*time.Second)
	took := time.Since(killed)
	t.Logf("FIGURE kill -9 + restart after 200ms: node-a active again %v after the kill", took.Round(time.Millisecond))
	if limit := 200*time.Millisecond + 2*time.Second; took > limit+slack {
		t.Errorf("restarted node active %v after the kill, want <= %v (the lease lasts 15s)", took, limit)
	}
	st := p.a.status(t)
	if st.Term != term+1 || !strings.Contains(st.Reason, "taken over from this node's previous process") {
		t.Errorf("after the restart: term %d (want %d), reason %q", st.Term, term+1, st.Reason)
	}
	if sb := p.b.status(t); sb.Role != "standby" {
		t.Errorf("node-b is %s", sb.Role)
	}
	if code, body, err := p.b.get("/"); code != 200 || !strings.Contains(body, "instance=app-a") {
		t.Errorf("request through node-b: %d %q %v", code, body, err)
	}
}

// TestKillNineRestartUnhealthyReleases: the restarted process's backend is
// down: it releases the lease its predecessor left, and node-b takes over
// long before the expiry.
func TestKillNineRestartUnhealthyReleases(t *testing.T) {
	skipShort(t)
	p := startPair(t, nodeOpts{})
	ctx, stop := context.WithCancel(context.Background())
	watch := watchProbes(ctx, p.a, p.b)
	defer func() { stop(); watch.check(t) }()
	p.appA.Kill()
	o := nodeOpts{leaseFile: filepath.Join(filepath.Dir(p.token), "lease.json"), backendPort: p.appA.port, tokenFile: p.token}
	killed := killAndRestart(t, p.a, o, 0)
	waitProbe(t, p.b, 200, 14*time.Second)
	took := time.Since(killed)
	// Grace: rise × interval + timeout, at least 1s; then node-b's retry.
	limit := time.Second + 500*time.Millisecond
	t.Logf("FIGURE kill -9 + restart with the app down: node-b active %v after the kill", took.Round(time.Millisecond))
	if took > limit+slack {
		t.Errorf("node-b active %v after the kill, want <= %v", took, limit)
	}
	if !strings.Contains(p.a.Output(), "released the lease left by this node's previous process") {
		t.Errorf("node-a did not log the release:\n%s", p.a.Output())
	}
}

// linkTOML is the [peer] table for a node of a linked pair.
func linkTOML(listen, peer int, secretFile string) string {
	return fmt.Sprintf("[peer]\nlisten = \"127.0.0.1:%d\"\npeers = [\"127.0.0.1:%d\"]\nsecret_file = %q\ntimeout = \"300ms\"\n", listen, peer, secretFile)
}

// linkedPair is a pair whose nodes talk over the peer link. retry is long,
// so that only a push explains a handover faster than it.
func linkedPair(t *testing.T, secretB string) (*pair, nodeOpts, nodeOpts) {
	t.Helper()
	dir := t.TempDir()
	secret, other := filepath.Join(dir, "secret"), filepath.Join(dir, "other-secret")
	os.WriteFile(secret, []byte("pair-secret\n"), 0o600)
	os.WriteFile(other, []byte(secretB+"\n"), 0o600)
	secB := secret
	if secretB != "" {
		secB = other
	}
	pa, pb := freePort(t), freePort(t)
	p := &pair{token: filepath.Join(dir, "token")}
	os.WriteFile(p.token, []byte("test-token\n"), 0o600)
	p.appA, p.appB = startApp(t, "app-a"), startApp(t, "app-b")
	oa := nodeOpts{leaseFile: filepath.Join(dir, "lease.json"), tokenFile: p.token, backendPort: p.appA.port,
		retry: "5s", extra: linkTOML(pa, pb, secret)}
	ob := oa
	ob.backendPort, ob.extra = p.appB.port, linkTOML(pb, pa, secB)
	p.a = startNode(t, "node-a", oa)
	waitProbe(t, p.a, 200, 10*time.Second)
	p.b = startNode(t, "node-b", ob)
	waitRole(t, p.b, "standby", 10*time.Second)
	return p, oa, ob
}

// waitPeer waits until n's status shows its peer reachable under name.
func waitPeer(t *testing.T, n *batonNode, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		st := n.status(t)
		if len(st.Peers) == 1 && st.Peers[0].Reachable && st.Peers[0].Node == name {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never saw peer %s: %+v", n.name, name, n.status(t).Peers)
}

func stepDown(t *testing.T, n *batonNode, token string, args ...string) (int, string) {
	t.Helper()
	cmd := start(t, "step-down", "baton", append([]string{"step-down", "-admin", fmt.Sprintf("http://127.0.0.1:%d", n.admin), "-token-file", token}, args...)...)
	code := cmd.Wait(t, 40*time.Second)
	return code, cmd.Output()
}

// TestPeerLinkPushAndHandover: over the peer link a step-down is pushed
// (node-b acquires at once, far sooner than its 5s retry), step-down -to
// hands the role to the named node with the lease never free, and an
// unknown name is refused with the peers it knows.
func TestPeerLinkPushAndHandover(t *testing.T) {
	skipShort(t)
	p, _, _ := linkedPair(t, "")
	ctx, stop := context.WithCancel(context.Background())
	watch := watchProbes(ctx, p.a, p.b)
	defer func() { stop(); watch.check(t) }()
	waitPeer(t, p.a, "node-b")
	waitPeer(t, p.b, "node-a")

	// Push on release.
	t0 := time.Now()
	if code, out := stepDown(t, p.a, p.token); code != 0 {
		t.Fatalf("step-down: %d %s", code, out)
	}
	waitProbe(t, p.b, 200, 6*time.Second)
	took := time.Since(t0)
	t.Logf("FIGURE step-down with the peer link: node-b active %v after the command started (retry_interval 5s)", took.Round(time.Millisecond))
	if took > slack {
		t.Errorf("node-b active %v after the step-down: the push did not arrive (retry is 5s)", took)
	}
	term := p.b.status(t).Term
	// node-a learns the new holder from the push and forwards.
	if code, body, _ := p.a.get("/"); code != 200 || !strings.Contains(body, "instance=app-b") {
		t.Errorf("request through node-a: %d %q", code, body)
	}

	// Unknown node: refused, nothing changes.
	if code, out := stepDown(t, p.b, p.token, "-to", "node-x"); code != 1 || !strings.Contains(out, `no such peer: "node-x" (known: node-a at 127.0.0.1:`) {
		t.Errorf("step-down -to node-x: exit %d: %s", code, out)
	}
	if code, _ := p.b.probeCode(); code != 200 {
		t.Fatal("node-b lost the role over a refused step-down")
	}

	// Handover to the named node, with load on node-b.
	waitRole(t, p.a, "standby", 10*time.Second)
	if until := p.a.status(t).Backoff; !until.IsZero() { // the handover ignores the back-off, but wait anyway:
		time.Sleep(time.Until(until) + 50*time.Millisecond) // node-a must not win by its own election
	}
	lctx, lcancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer lcancel()
	bURL := fmt.Sprintf("http://127.0.0.1:%d", p.b.http)
	done := make(chan []result)
	go func() { done <- load(lctx, 4, 2000, func() string { return bURL }, "/") }()
	time.Sleep(500 * time.Millisecond)
	t1 := time.Now()
	code, out := stepDown(t, p.b, p.token, "-to", "node-a")
	handed := time.Since(t1)
	if code != 0 || !strings.Contains(out, "handed over to node-a") {
		t.Fatalf("step-down -to node-a: exit %d: %s", code, out)
	}
	rs := <-done
	n, first := failures(rs)
	t.Logf("FIGURE step-down -to: %d requests, %d failed, command took %v", len(rs), n, handed.Round(time.Millisecond))
	if n > 0 {
		t.Errorf("%d of %d requests failed across the handover; first: %s", n, len(rs), first)
	}
	sa := p.a.status(t)
	if sa.Role != "active" || sa.Term != term+1 || !strings.Contains(sa.Reason, "handed over by node-b") {
		t.Errorf("node-a after the handover: %s term %d (want %d), %q", sa.Role, sa.Term, term+1, sa.Reason)
	}
	if !strings.Contains(p.b.Output(), "step-down to node-a") {
		t.Errorf("node-b did not log the handover reason")
	}
}

// TestPeerLinkWrongSecret: peers with different secrets cannot talk; the
// rejection is logged once and shown in status, and the pair still works
// on the storage alone.
func TestPeerLinkWrongSecret(t *testing.T) {
	skipShort(t)
	p, _, _ := linkedPair(t, "another-secret")
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := p.a.status(t)
		if len(st.Peers) == 1 && strings.Contains(st.Peers[0].LastError, "rejected our authentication") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node-a peers: %+v", st.Peers)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // a few more probe rounds
	if n := strings.Count(p.b.Output(), "peer call rejected"); n != 1 {
		t.Errorf("node-b logged %d rejections, want 1", n)
	}
	if strings.Contains(p.a.Output()+p.b.Output(), "pair-secret") || strings.Contains(p.a.Output()+p.b.Output(), "another-secret") {
		t.Error("a secret appears in the log")
	}
	if code, out := stepDown(t, p.a, p.token, "-to", "node-b"); code != 1 {
		t.Errorf("step-down -to over a broken link: exit %d: %s", code, out)
	}
	if code, _ := p.a.probeCode(); code != 200 {
		t.Error("node-a lost the role over a refused handover")
	}
	// SIGTERM still hands over through the storage.
	p.a.Signal(syscall.SIGTERM)
	waitProbe(t, p.b, 200, 10*time.Second)
}
