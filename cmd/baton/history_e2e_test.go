//go:build unix

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batonproxy/baton/lease/history"
)

// startShortLease starts a node like startNodeWith, with a 4 s lease (the
// file lease is not bound by Azure's 15 s minimum), so that a kill -9
// without a restart costs seconds, not the 15 s of the other tests.
func startShortLease(t *testing.T, n *batonNode, o nodeOpts) *batonNode {
	t.Helper()
	n.configPath = filepath.Join(t.TempDir(), n.name+".toml")
	cfg := nodeConfig(n.name, n, o)
	long := "duration = \"15s\"\nrenew_interval = \"1s\"\nrenew_deadline = \"5s\"\n"
	if !strings.Contains(cfg, long) {
		t.Fatalf("the test config's lease timing changed:\n%s", cfg)
	}
	cfg = strings.Replace(cfg, long, "duration = \"4s\"\nrenew_interval = \"1s\"\nrenew_deadline = \"3s\"\n", 1)
	if err := os.WriteFile(n.configPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	n.proc = start(t, n.name, "baton", "run", "-config", n.configPath)
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", n.admin), 10*time.Second)
	return n
}

// batonHistory runs `baton history` with args and returns its stdout.
func batonHistory(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "baton"), append([]string{"history"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Logf("baton history %v: %v: %s", args, err, stderr.String())
	}
	return string(out), err
}

// waitHistory polls `baton history -json` until it lists want terms, the
// last one matching ok.
func waitHistory(t *testing.T, config string, want int, ok func(history.Entry) bool) history.Document {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var d history.Document
	for {
		out, err := batonHistory(t, "-config", config, "-json", "-n", "0")
		if err == nil {
			d = history.Document{}
			if err := json.Unmarshal([]byte(out), &d); err != nil {
				t.Fatalf("baton history -json: %v\n%s", err, out)
			}
			if len(d.Entries) == want && ok(d.Entries[want-1]) {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("history never showed %d terms: %+v", want, d.Entries)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHistoryOfAPair: a pair on a file lease goes through a step-down, a
// kill -9 without a restart (the lease expires), a kill -9 with a restart
// (takeover) and a stop; `baton history` then lists every term with the
// right start and end, from either node's configuration, also with both
// nodes down.
func TestHistoryOfAPair(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("test-token\n"), 0o600)
	appA, appB := startApp(t, "app-a"), startApp(t, "app-b")
	oa := nodeOpts{leaseFile: filepath.Join(dir, "lease.json"), tokenFile: token, backendPort: appA.port}
	ob := oa
	ob.backendPort = appB.port
	a := startShortLease(t, &batonNode{name: "node-a", http: freePort(t), probe: freePort(t), admin: freePort(t)}, oa)
	waitProbe(t, a, 200, 10*time.Second) // term 1
	b := startShortLease(t, &batonNode{name: "node-b", http: freePort(t), probe: freePort(t), admin: freePort(t)}, ob)
	waitRole(t, b, "standby", 10*time.Second)

	if code, out := stepDown(t, a, token); code != 0 { // term 1 released, node-b: term 2
		t.Fatalf("step-down: %d %s", code, out)
	}
	waitProbe(t, b, 200, 5*time.Second)
	// The history is written off the election's path: let node-b's term
	// be recorded before it is killed (a term whose holder dies before its
	// write is not in the history, README: History).
	waitHistory(t, b.configPath, 2, func(e history.Entry) bool { return e.Node == "node-b" })
	b.Kill() // no restart: node-a takes the lease when it expires (term 3)
	killed := time.Now()
	waitProbe(t, a, 200, 10*time.Second)
	t.Logf("node-a active %v after node-b's kill -9 (4s lease)", time.Since(killed).Round(time.Millisecond))
	waitHistory(t, b.configPath, 3, func(e history.Entry) bool { return e.Node == "node-a" })

	// kill -9 and restart: the new process takes its own lease over (term 4).
	a.Kill()
	startShortLease(t, a, oa)
	waitProbe(t, a, 200, 10*time.Second)
	d := waitHistory(t, a.configPath, 4, func(e history.Entry) bool { return e.Start == history.StartTakenOver })

	type row struct{ node, start, end, by string }
	want := []row{
		{"node-a", "acquired", "released: step-down", "node-a"},
		{"node-b", "acquired", "lost: expired or the node crashed", "node-a"},
		{"node-a", "acquired", "lost: taken over after a crash by the node's restarted process", "node-a"},
		{"node-a", "taken over from this node's previous process", "", ""},
	}
	check := func(d history.Document, want []row) {
		t.Helper()
		if len(d.Entries) != len(want) {
			t.Fatalf("%d terms recorded, want %d: %+v", len(d.Entries), len(want), d.Entries)
		}
		for i, e := range d.Entries {
			got := row{e.Node, e.Start, e.End, e.EndedBy}
			if e.Term != uint64(i+1) || got != want[i] {
				t.Errorf("term %d: %+v, want term %d %+v", e.Term, got, i+1, want[i])
			}
			if e.AcquiredAt.IsZero() || (e.End != "" && e.EndedAt.Before(e.AcquiredAt)) {
				t.Errorf("term %d times: %v .. %v", e.Term, e.AcquiredAt, e.EndedAt)
			}
		}
	}
	check(d, want)

	// A stop records its own end before the process exits.
	a.Signal(syscall.SIGTERM)
	if code := a.Wait(t, 15*time.Second); code != 0 {
		t.Fatalf("node-a exited %d", code)
	}
	want[3].end, want[3].by = "released: stop", "node-a"
	out, err := batonHistory(t, "-config", b.configPath, "-json") // both nodes are down
	if err != nil {
		t.Fatal(err)
	}
	d = history.Document{}
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	check(d, want)

	table, err := batonHistory(t, "-config", a.configPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("baton history:\n%s", table)
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "TERM") || !strings.Contains(lines[0], "DURATION") {
		t.Fatalf("table:\n%s", table)
	}
	for i, w := range []string{
		"acquired; released: step-down",
		"acquired; lost: expired or the node crashed (recorded by node-a)",
		"acquired; lost: taken over after a crash by the node's restarted process",
		"taken over from this node's previous process; released: stop",
	} {
		if f := strings.Fields(lines[i+1]); len(f) < 3 || f[0] != strconv.Itoa(i+1) || !strings.HasSuffix(lines[i+1], w) {
			t.Errorf("row %d: %q, want it to end with %q", i+1, lines[i+1], w)
		}
	}
	if two, _ := batonHistory(t, "-config", a.configPath, "-n", "2"); strings.Count(strings.TrimSpace(two), "\n") != 2 {
		t.Errorf("-n 2:\n%s", two)
	}
}
