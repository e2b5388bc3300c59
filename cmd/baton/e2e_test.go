//go:build unix

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func skipShort(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test with real processes; run without -short (make test does)")
	}
}

// TestFailoverBetweenTwoProcesses is the slice's main proof: two real baton
// processes sharing a lease file, each in front of its own app.
func TestFailoverBetweenTwoProcesses(t *testing.T) {
	skipShort(t)
	leaseFile := filepath.Join(t.TempDir(), "lease.json")
	appA, appB := startApp(t, "app-a"), startApp(t, "app-b")
	a := startNode(t, "node-a", nodeOpts{leaseFile: leaseFile, backendPort: appA.port})
	b := startNode(t, "node-b", nodeOpts{leaseFile: leaseFile, backendPort: appB.port})
	apps := map[string]*app{"node-a": appA, "node-b": appB}
	other := func(n *batonNode) *batonNode {
		if n == a {
			return b
		}
		return a
	}

	ctx, stopWatch := context.WithCancel(context.Background())
	watch := watchProbes(ctx, a, b)
	defer func() { stopWatch(); watch.check(t) }()

	// Exactly one becomes active.
	active := waitActive(t, 10*time.Second, a, b)
	standby := other(active)
	term1 := active.status(t).Term
	if code, body := standby.probeCode(); code != 503 || body != "standby" {
		t.Fatalf("standby probe = %d %q, want 503 standby", code, body)
	}
	code, body, err := active.get("/")
	if err != nil || code != 200 || !strings.Contains(body, "instance=app-"+strings.TrimPrefix(active.name, "node-")) ||
		!strings.Contains(body, fmt.Sprintf("term=%d", term1)) {
		t.Fatalf("request through the active: %d %q %v", code, body, err)
	}
	// The standby never serves locally: it forwards to the active node.
	activeApp := "instance=app-" + strings.TrimPrefix(active.name, "node-")
	if code, body, _ := standby.get("/"); code != 200 || !strings.Contains(body, activeApp) {
		t.Fatalf("request through the standby: %d %q, want it answered by %s", code, body, activeApp)
	}

	// Kill the active's backend: the other node takes over within
	// fall*interval + retry_interval + 1s.
	apps[active.name].Kill()
	limit := 2*250*time.Millisecond + 500*time.Millisecond + time.Second
	took := waitProbe(t, standby, 200, limit+2*time.Second)
	t.Logf("FIGURE backend-kill failover: %s took over %v after its peer's backend died (limit %v)", standby.name, took.Round(time.Millisecond), limit)
	if took > limit+slack {
		t.Errorf("backend failover took %v, want <= %v (+%v for a loaded machine)", took, limit, slack)
	}
	if code, _ := active.probeCode(); code != 503 {
		t.Errorf("the node whose backend died still answers its probe %d", code)
	}
	term2 := standby.status(t).Term
	if term2 != term1+1 {
		t.Errorf("term after backend failover = %d, want %d", term2, term1+1)
	}
	if code, body, _ := standby.get("/"); code != 200 || !strings.Contains(body, fmt.Sprintf("term=%d", term2)) {
		t.Errorf("new active request: %d %q", code, body)
	}

	// The old active's backend returns: it becomes a standby after its
	// back-off.
	old := active
	apps[old.name].restart(t)
	waitRole(t, old, "standby", 10*time.Second)
	// and its candidacy back-off ends, so it can take over again.
	if until := old.status(t).Backoff; !until.IsZero() {
		time.Sleep(time.Until(until) + 50*time.Millisecond)
	}

	// SIGTERM of the active: its probe is 503 within 100ms, the other takes
	// over within retry_interval + 1s, the process exits 0. (The figures
	// are logged; the test fails only beyond them plus slack, since a CI
	// machine runs other packages' tests at the same time.)
	active, standby = standby, old
	t0 := time.Now()
	active.Signal(syscall.SIGTERM)
	flip := waitProbe(t, active, 503, time.Second)
	t.Logf("FIGURE probe flip on SIGTERM: %v", flip.Round(100*time.Microsecond))
	if flip > 100*time.Millisecond+slack/2 {
		t.Errorf("probe still 200 %v after SIGTERM, want <= 100ms (+%v)", flip, slack/2)
	}
	waitProbe(t, standby, 200, 5*time.Second)
	took = time.Since(t0)
	t.Logf("FIGURE SIGTERM failover: %s active %v after SIGTERM of %s (limit 1.5s)", standby.name, took.Round(time.Millisecond), active.name)
	if took > 1500*time.Millisecond+slack {
		t.Errorf("SIGTERM failover took %v, want <= retry_interval + 1s (+%v)", took, slack)
	}
	if term3 := standby.status(t).Term; term3 != term2+1 {
		t.Errorf("term after SIGTERM failover = %d, want %d", term3, term2+1)
	}
	if code := active.Wait(t, 10*time.Second); code != 0 {
		t.Errorf("baton exited %d after SIGTERM, want 0", code)
	}
	out := active.Output()
	for _, want := range []string{`"to":"stopping"`, "lease released"} {
		if !strings.Contains(out, want) {
			t.Errorf("log of the stopped node lacks %q", want)
		}
	}
}

func waitRole(t *testing.T, n *batonNode, role string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if _, r := n.probeCode(); r == role {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, r := n.probeCode()
	t.Fatalf("%s did not become %s within %s (is %q)", n.name, role, limit, r)
}

// TestBackendRefusingStaysOutOfCandidacy: a node whose backend refuses
// connections never competes, and says so once, not once per check.
func TestBackendRefusingStaysOutOfCandidacy(t *testing.T) {
	skipShort(t)
	leaseFile := filepath.Join(t.TempDir(), "lease.json")
	n := startNode(t, "lonely", nodeOpts{leaseFile: leaseFile, backendPort: freePort(t)})
	time.Sleep(2 * time.Second) // 8 check intervals
	if code, role := n.probeCode(); code != 503 || role != "unhealthy" {
		t.Fatalf("probe = %d %q, want 503 unhealthy", code, role)
	}
	st := n.status(t)
	if st.Term != 0 || st.Health.Healthy {
		t.Errorf("status: term %d healthy %v", st.Term, st.Health.Healthy)
	}
	if _, err := os.Stat(leaseFile); err == nil {
		if b, _ := os.ReadFile(leaseFile); strings.Contains(string(b), `"holder":"lonely"`) {
			t.Errorf("an unhealthy node took the lease: %s", b)
		}
	}
	n.Signal(syscall.SIGTERM)
	n.Wait(t, 10*time.Second)
	out := n.Output()
	if c := strings.Count(out, "backend unhealthy"); c != 1 {
		t.Errorf("%q logged %d times over ~8 failing checks, want once per change:\n%s", "backend unhealthy", c, out)
	}
}

func TestPortInUse(t *testing.T) {
	skipShort(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().(*net.TCPAddr).Port
	n := &batonNode{name: "busy", http: busy, probe: freePort(t), admin: freePort(t)}
	path := filepath.Join(t.TempDir(), "busy.toml")
	os.WriteFile(path, []byte(nodeConfig("busy", n, nodeOpts{leaseFile: filepath.Join(t.TempDir(), "l"), backendPort: freePort(t)})), 0o600)
	p := start(t, "busy", "baton", "run", "-config", path)
	if code := p.Wait(t, 10*time.Second); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	want := fmt.Sprintf("listen.http: cannot listen on 127.0.0.1:%d", busy)
	if out := p.Output(); !strings.Contains(out, want) || !strings.Contains(out, "address already in use") {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
}

func TestBadConfigExitsTwo(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("node_name = \"x\"\n[lease]\nbackend = \"file\"\nduratoin = \"15s\"\n"), 0o600)
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"missing file", []string{"run", "-config", filepath.Join(dir, "nope.toml")}, []string{"nope.toml"}},
		{"unknown key", []string{"run", "-config", bad}, []string{"lease.duratoin", "4"}},
		{"check-config unknown key", []string{"check-config", "-config", bad}, []string{"lease.duratoin"}},
		{"unknown command", []string{"frobnicate"}, []string{"unknown command"}},
		{"bad flag", []string{"run", "-nope"}, []string{"flag provided but not defined"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := start(t, c.name, "baton", c.args...)
			if code := p.Wait(t, 10*time.Second); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			out := p.Output()
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestCheckConfigPrintsTimingContract(t *testing.T) {
	skipShort(t)
	n := &batonNode{http: 18080, probe: 18081, admin: 18082}
	path := filepath.Join(t.TempDir(), "ok.toml")
	os.WriteFile(path, []byte(nodeConfig("ok", n, nodeOpts{leaseFile: "/tmp/x", backendPort: 8080})), 0o600)
	p := start(t, "check", "baton", "check-config", "-config", path)
	if code := p.Wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit %d:\n%s", code, p.Output())
	}
	out := p.Output()
	for _, w := range []string{"renew deadline", "planned switchover", "process killed", "ONE host"} {
		if !strings.Contains(out, w) {
			t.Errorf("check-config output lacks %q:\n%s", w, out)
		}
	}
}
