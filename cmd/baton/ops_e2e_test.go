//go:build unix

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStatusCommand: `baton status` prints a table or JSON and exits 0
// when the node is active or standby, 1 otherwise.
func TestStatusCommand(t *testing.T) {
	skipShort(t)
	p := startPair(t, nodeOpts{})
	admin := func(n *batonNode) string { return fmt.Sprintf("http://127.0.0.1:%d", n.admin) }
	for _, n := range []*batonNode{p.a, p.b} {
		s := start(t, "status", "baton", "status", "-admin", admin(n))
		if code := s.Wait(t, 10*time.Second); code != 0 {
			t.Errorf("status of %s exited %d:\n%s", n.name, code, s.Output())
		}
		if !strings.Contains(s.Output(), "role") || !strings.Contains(s.Output(), n.name) {
			t.Errorf("status table:\n%s", s.Output())
		}
	}
	s := start(t, "status-json", "baton", "status", "-json", "-admin", admin(p.a))
	if code := s.Wait(t, 10*time.Second); code != 0 {
		t.Fatalf("status -json exited %d", code)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(s.Output()), &doc); err != nil || doc["role"] != "active" || doc["node"] != "node-a" {
		t.Errorf("status -json: %v %v\n%s", doc["role"], err, s.Output())
	}
	// An unhealthy node: exit 1.
	p.appB.Kill()
	waitRole(t, p.b, "unhealthy", 5*time.Second)
	s = start(t, "status-unhealthy", "baton", "status", "-admin", admin(p.b))
	if code := s.Wait(t, 10*time.Second); code != 1 {
		t.Errorf("status of an unhealthy node exited %d, want 1", code)
	}
	// No node there: exit 1 with the reason.
	s = start(t, "status-none", "baton", "status", "-admin", "http://127.0.0.1:1")
	if code := s.Wait(t, 10*time.Second); code != 1 || !strings.Contains(s.Output(), "refused") {
		t.Errorf("status without a node: %d %s", code, s.Output())
	}
}

// TestSIGHUPReload: a valid file is applied, an invalid one is refused and
// the node keeps running on the old configuration with its role intact.
func TestSIGHUPReload(t *testing.T) {
	skipShort(t)
	p := startPair(t, nodeOpts{})
	orig, _ := os.ReadFile(p.a.configPath)
	os.WriteFile(p.a.configPath, []byte(strings.Replace(string(orig), `interval = "250ms"`, `interval = "300ms"`, 1)), 0o600)
	p.a.Signal(syscall.SIGHUP)
	waitLog(t, p.a, "configuration reloaded", 5*time.Second)
	os.WriteFile(p.a.configPath, []byte(string(orig)+"\nnot_a_key = 1\n"), 0o600)
	p.a.Signal(syscall.SIGHUP)
	waitLog(t, p.a, "reload rejected", 5*time.Second)
	if code, role := p.a.probeCode(); code != 200 || role != "active" {
		t.Errorf("after reloads: probe %d %s", code, role)
	}
	// `baton reload` through the admin API says the same.
	r := start(t, "reload", "baton", "reload", "-admin", fmt.Sprintf("http://127.0.0.1:%d", p.a.admin), "-token-file", p.token)
	if code := r.Wait(t, 10*time.Second); code != 1 || !strings.Contains(r.Output(), "not_a_key") {
		t.Errorf("baton reload of a bad file: exit %d\n%s", code, r.Output())
	}
	os.WriteFile(p.a.configPath, orig, 0o600)
	r = start(t, "reload-ok", "baton", "reload", "-admin", fmt.Sprintf("http://127.0.0.1:%d", p.a.admin), "-token-file", p.token)
	if code := r.Wait(t, 10*time.Second); code != 0 || !strings.Contains(r.Output(), "health") {
		t.Errorf("baton reload: exit %d\n%s", code, r.Output())
	}
}

func waitLog(t *testing.T, n *batonNode, msg string, limit time.Duration, more ...string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		for line := range strings.Lines(n.Output()) {
			if strings.Contains(line, msg) && allIn(line, more) {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never logged %q (with %q on the same line):\n%s", n.name, msg, more, n.Output())
}

func allIn(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// TestClientCommandsReadTheConfig: status and step-down find the admin
// address and token in the node's configuration file (-config), as
// `sudo baton step-down` does on an installed node with the default file.
func TestClientCommandsReadTheConfig(t *testing.T) {
	skipShort(t)
	p := startPair(t, nodeOpts{})
	st := start(t, "status", "baton", "status", "-config", p.a.configPath)
	if code := st.Wait(t, 10*time.Second); code != 0 || !strings.Contains(st.Output(), "node-a") {
		t.Fatalf("baton status -config: exit %d: %s", code, st.Output())
	}
	sd := start(t, "step-down", "baton", "step-down", "-config", p.a.configPath)
	if code := sd.Wait(t, 10*time.Second); code != 0 || !strings.Contains(sd.Output(), "stepped down") {
		t.Fatalf("baton step-down -config: exit %d: %s", code, sd.Output())
	}
	waitProbe(t, p.b, 200, 5*time.Second)
	bad := start(t, "status", "baton", "status", "-config", filepath.Join(t.TempDir(), "missing.toml"))
	if code := bad.Wait(t, 10*time.Second); code != 2 || !strings.Contains(bad.Output(), "missing.toml") {
		t.Errorf("baton status with a missing -config: exit %d: %s", code, bad.Output())
	}
}
