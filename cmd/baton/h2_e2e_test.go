//go:build unix

package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"path/filepath"
	"testing"
	"time"
)

// TestHTTP2DrainGOAWAY: an HTTP/2 client on node-a's HTTPS listener gets
// GOAWAY after a step-down (its connection is closed when idle) and its
// later requests succeed on a new connection, answered by node-b's app.
func TestHTTP2DrainGOAWAY(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	token := tokenFile(t)
	tlsCfg := staticTLSTOML("hsts = \"1h\"\n")
	leaseFile := filepath.Join(dir, "lease.json")
	appA, appB := startApp(t, "app-a"), startApp(t, "app-b")
	httpsA := freePort(t)
	a := startNodeWith(t, &batonNode{name: "node-a", http: freePort(t), probe: freePort(t), admin: freePort(t)}, httpsA,
		nodeOpts{leaseFile: leaseFile, backendPort: appA.port, tokenFile: token, extra: tlsCfg})
	waitProbe(t, a, 200, 10*time.Second)
	b := startNodeWith(t, &batonNode{name: "node-b", http: freePort(t), probe: freePort(t), admin: freePort(t)}, freePort(t),
		nodeOpts{leaseFile: leaseFile, backendPort: appB.port, tokenFile: token, extra: tlsCfg})
	waitRole(t, b, "standby", 10*time.Second)

	c := newHTTPSClient("baton.test", httpsA)
	var conns int
	get := func() (string, bool) {
		t.Helper()
		reused := false
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
			reused = i.Reused
			if !i.Reused {
				conns++
			}
		}}
		req, _ := http.NewRequest("GET", "https://baton.test/", nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		res, err := c.Do(req)
		if err != nil {
			t.Fatalf("request failed: %v", err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || res.ProtoMajor != 2 {
			t.Fatalf("status %d proto %s", res.StatusCode, res.Proto)
		}
		if res.Header.Get("Strict-Transport-Security") != "max-age=3600" {
			t.Errorf("HSTS header %q", res.Header.Get("Strict-Transport-Security"))
		}
		return res.Header.Get("X-Instance"), reused
	}
	for range 3 {
		if inst, _ := get(); inst != "app-a" {
			t.Fatalf("before step-down answered by %s", inst)
		}
	}
	if conns != 1 {
		t.Fatalf("%d connections before the step-down, want 1 (HTTP/2 reuse)", conns)
	}
	out := start(t, "step-down", "baton", "step-down", "-admin", fmt.Sprintf("http://127.0.0.1:%d", a.admin), "-token-file", token)
	if code := out.Wait(t, 10*time.Second); code != 0 {
		t.Fatalf("step-down: %s", out.Output())
	}
	waitProbe(t, b, 200, 5*time.Second)
	// For drain.exit_delay (500ms) the demoted node keeps clients connected
	// and forwards (the load balancer may not have seen node-b yet); after
	// that its responses carry GOAWAY and the client reconnects.
	time.Sleep(600 * time.Millisecond)
	var after []string
	for range 4 {
		inst, _ := get()
		after = append(after, inst)
		time.Sleep(50 * time.Millisecond)
	}
	for _, inst := range after {
		if inst != "app-b" {
			t.Errorf("after step-down answered by %v, want app-b", after)
			break
		}
	}
	if conns < 2 {
		t.Errorf("the client kept its only connection after the step-down: no GOAWAY")
	}
	t.Logf("FIGURE HTTP/2: %d connections for 7 requests across the step-down (GOAWAY then reconnect)", conns)
}
