//go:build unix

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pair is two apps and two baton nodes sharing a lease file, with node a
// active and node b a standby that knows it.
type pair struct {
	a, b       *batonNode
	appA, appB *app
	token      string
}

func startPair(t *testing.T, o nodeOpts) *pair {
	t.Helper()
	dir := t.TempDir()
	p := &pair{token: filepath.Join(dir, "token")}
	os.WriteFile(p.token, []byte("test-token\n"), 0o600)
	leaseFile := filepath.Join(dir, "lease.json")
	p.appA, p.appB = startApp(t, "app-a"), startApp(t, "app-b")
	o.leaseFile, o.tokenFile = leaseFile, p.token
	o.backendPort = p.appA.port
	p.a = startNode(t, "node-a", o)
	waitProbe(t, p.a, 200, 10*time.Second)
	o.backendPort = p.appB.port
	p.b = startNode(t, "node-b", o)
	waitRole(t, p.b, "standby", 10*time.Second)
	return p
}

// slowClient is for requests that take seconds.
var slowClient = &http.Client{Timeout: 15 * time.Second}

// result is one request of the load client.
type result struct {
	start, end time.Time
	code       int
	instance   string
	err        error
}

// load runs workers that each reuse one keep-alive connection to target(),
// until ctx ends or max requests each; it returns every result.
func load(ctx context.Context, workers, max int, target func() string, path string) []result {
	var (
		mu  sync.Mutex
		out []result
		wg  sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for i := 0; i < max && ctx.Err() == nil; i++ {
				r := result{start: time.Now()}
				res, err := c.Get(target() + path)
				if err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					r.code, r.instance = res.StatusCode, res.Header.Get("X-Instance")
				}
				r.err, r.end = err, time.Now()
				mu.Lock()
				out = append(out, r)
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	return out
}

func failures(rs []result) (n int, first string) {
	for _, r := range rs {
		if r.err != nil || r.code != 200 {
			if n == 0 {
				first = fmt.Sprintf("code %d err %v at %s", r.code, r.err, r.start.Format(time.StampMilli))
			}
			n++
		}
	}
	return n, first
}

// TestStepDownLosesNothing: a client keeps reusing connections to node a
// (established flows the load balancer leaves alone); `baton step-down` on
// a loses no request, slow requests in flight finish on a, and every request
// started after the step-down is answered by b's app.
func TestStepDownLosesNothing(t *testing.T) {
	skipShort(t)
	p := startPair(t, nodeOpts{})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	aURL := fmt.Sprintf("http://127.0.0.1:%d", p.a.http)
	var fast []result
	done := make(chan struct{})
	go func() { defer close(done); fast = load(ctx, 4, 2000, func() string { return aURL }, "/") }()

	time.Sleep(700 * time.Millisecond)
	slow := make(chan result, 2)
	for range 2 {
		go func() {
			r := result{start: time.Now()}
			res, err := slowClient.Get(aURL + "/slow?ms=1500")
			if err == nil {
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				r.code, r.instance = res.StatusCode, res.Header.Get("X-Instance")
			}
			r.err = err
			slow <- r
		}()
	}
	p.appA.waitSlow(t, 2) // the slow requests are in flight on app-a
	stepped := time.Now()
	out := start(t, "step-down", "baton", "step-down", "-admin", fmt.Sprintf("http://127.0.0.1:%d", p.a.admin), "-token-file", p.token)
	if code := out.Wait(t, 10*time.Second); code != 0 {
		t.Fatalf("baton step-down exited %d: %s", code, out.Output())
	}
	returned := time.Now()
	<-done

	for range 2 {
		r := <-slow
		if r.err != nil || r.code != 200 || r.instance != "app-a" {
			t.Errorf("slow request in flight at step-down: code %d instance %q err %v, want 200 from app-a", r.code, r.instance, r.err)
		}
	}
	n, first := failures(fast)
	var firstB time.Time
	wrong := 0
	for _, r := range fast {
		if r.instance == "app-b" && (firstB.IsZero() || r.end.Before(firstB)) {
			firstB = r.end
		}
		if r.start.After(returned) && r.instance != "app-b" {
			wrong++
		}
	}
	t.Logf("FIGURE step-down: %d requests, %d failed, first answer from app-b %v after the step-down",
		len(fast), n, firstB.Sub(stepped).Round(time.Millisecond))
	if n > 0 {
		t.Errorf("%d of %d requests failed across the step-down; first: %s", n, len(fast), first)
	}
	if wrong > 0 {
		t.Errorf("%d requests started after the step-down were not answered by app-b", wrong)
	}
	if firstB.IsZero() {
		t.Fatal("no request was answered by app-b")
	}
	if code, _ := p.b.probeCode(); code != 200 {
		t.Errorf("node-b probe %d after the step-down", code)
	}
	st := p.a.status(t)
	if st.Role != "standby" || st.Requests.Forwarded == 0 {
		t.Errorf("node-a after step-down: role %s, forwarded %d", st.Role, st.Requests.Forwarded)
	}
}

// TestSIGTERMLosesNothing: clients follow the probes as a load balancer
// does (new connections go to the node whose probe last said 200, checked
// every 200ms; established ones stay); SIGTERM of the active loses nothing.
// node-a's exit delay covers what a load balancer needs to see node-b: up
// to retry_interval (500ms) until node-b takes the lease, then up to one
// check period (200ms); node-a's listeners close after it. (The shorter
// default of the other tests loses requests here when node-b is slow.)
func TestSIGTERMLosesNothing(t *testing.T) {
	skipShort(t)
	p := startPair(t, nodeOpts{exitDelay: "1500ms"})
	var mu sync.Mutex
	current := fmt.Sprintf("http://127.0.0.1:%d", p.a.http)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	go func() { // the "load balancer": probe every 200ms
		for ctx.Err() == nil {
			for _, n := range []*batonNode{p.a, p.b} {
				if code, _ := n.probeCode(); code == 200 {
					mu.Lock()
					current = fmt.Sprintf("http://127.0.0.1:%d", n.http)
					mu.Unlock()
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	var rs []result
	done := make(chan struct{})
	go func() {
		defer close(done)
		rs = load(ctx, 4, 2000, func() string { mu.Lock(); defer mu.Unlock(); return current }, "/")
	}()
	time.Sleep(700 * time.Millisecond)
	sent := time.Now()
	p.a.Signal(syscall.SIGTERM)
	<-done
	if code := p.a.Wait(t, 10*time.Second); code != 0 {
		t.Errorf("node-a exited %d", code)
	}
	n, first := failures(rs)
	var firstB time.Time
	for _, r := range rs {
		if r.instance == "app-b" && (firstB.IsZero() || r.end.Before(firstB)) {
			firstB = r.end
		}
	}
	t.Logf("FIGURE SIGTERM: %d requests, %d failed, first answer from app-b %v after SIGTERM",
		len(rs), n, firstB.Sub(sent).Round(time.Millisecond))
	if n > 0 {
		t.Errorf("%d of %d requests failed across the SIGTERM; first: %s", n, len(rs), first)
	}
	if firstB.IsZero() {
		t.Error("no request was answered by app-b")
	}
}

// TestWebSocketClosedByDrainDeadline: an upgraded connection through the
// active is closed no later than drain.timeout after a step-down.
func TestWebSocketClosedByDrainDeadline(t *testing.T) {
	skipShort(t)
	p := startPair(t, nodeOpts{})
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p.a.http))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: app\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", res, err)
	}
	fmt.Fprintf(conn, "hello\n")
	if line, err := br.ReadString('\n'); err != nil || line != "app-a: hello\n" {
		t.Fatalf("echo: %q %v", line, err)
	}
	stepped := time.Now()
	out := start(t, "step-down", "baton", "step-down", "-admin", fmt.Sprintf("http://127.0.0.1:%d", p.a.admin), "-token-file", p.token)
	if code := out.Wait(t, 10*time.Second); code != 0 {
		t.Fatalf("step-down exited %d: %s", code, out.Output())
	}
	// The connection still works during the drain...
	fmt.Fprintf(conn, "still there\n")
	if line, err := br.ReadString('\n'); err != nil || line != "app-a: still there\n" {
		t.Fatalf("echo during drain: %q %v", line, err)
	}
	// ...and is closed at the drain deadline (drain.timeout = 3s).
	_, err = br.ReadString('\n')
	closed := time.Since(stepped)
	t.Logf("FIGURE websocket closed %v after step-down (drain.timeout 3s)", closed.Round(time.Millisecond))
	if err == nil {
		t.Fatal("read a line after the drain deadline; want the connection closed")
	}
	if closed > 4*time.Second {
		t.Errorf("websocket closed %v after step-down, want <= drain.timeout + 1s", closed)
	}
	// The drain closes the connection first, then records the cut in its
	// status, then logs it.
	waitLog(t, p.a, "drain deadline passed", 2*time.Second)
	if st := p.a.status(t); st.Drain.LastCutUpgraded != 1 {
		t.Errorf("status drain %+v, want one upgraded connection cut", st.Drain)
	}
}
