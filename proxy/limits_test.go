package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// blockingApp answers /hold only when release is closed (or a value
// arrives), and counts what it saw.
type blockingApp struct {
	seen    atomic.Int32
	holding atomic.Int32
	release chan struct{}
}

func (a *blockingApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.seen.Add(1)
	if r.URL.Path == "/hold" {
		a.holding.Add(1)
		<-a.release
		a.holding.Add(-1)
	}
	io.WriteString(w, "ok")
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestBackendConcurrencyLimit: with max_backend_conns 2, a third request
// waits for a slot and is served when one frees; one that finds none in
// the queue time gets 503 with Retry-After, and neither counts against
// the backend.
func TestBackendConcurrencyLimit(t *testing.T) {
	app := &blockingApp{release: make(chan struct{})}
	p, _, front, obs := newTestProxy(t, app, func(o *Options) {
		o.MaxBackendConns = 2
		o.BackendQueueTimeout = 300 * time.Millisecond
	})
	get := func(path string) chan int {
		ch := make(chan int, 1)
		go func() {
			res, err := http.Get(front.URL + path)
			if err != nil {
				ch <- 0
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			ch <- res.StatusCode
		}()
		return ch
	}
	a, b := get("/hold"), get("/hold")
	waitUntil(t, "two requests at the backend", func() bool { return app.holding.Load() == 2 })
	if in, _, limit := p.BackendSlots(); in != 2 || limit != 2 {
		t.Fatalf("slots in use %d of %d, want 2 of 2", in, limit)
	}
	start := time.Now()
	if code := <-get("/x"); code != http.StatusServiceUnavailable {
		t.Fatalf("a request past the limit: %d, want 503", code)
	}
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Errorf("answered 503 after %v, before the queue time", waited)
	}
	if app.seen.Load() != 2 {
		t.Errorf("the app saw %d requests, want 2", app.seen.Load())
	}
	// One that waits gets the slot a finished request frees.
	c := get("/x")
	waitUntil(t, "a waiting request", func() bool { _, w, _ := p.BackendSlots(); return w == 1 })
	app.release <- struct{}{}
	if code := <-c; code != 200 {
		t.Errorf("the waiting request: %d, want 200", code)
	}
	close(app.release)
	<-a
	<-b
	if cn := p.Counters(); cn.Busy != 1 || cn.Local != 4 {
		t.Errorf("counters %+v, want 1 busy of 4 local", cn)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.errs != 0 || obs.started != 3 {
		t.Errorf("observer: %d errors, %d started; want 0 and 3 (a busy 503 never reaches the backend)", obs.errs, obs.started)
	}
}

// TestQueuedRequestReadsTheFenceAgain: a request that waited for a slot
// while the node was demoted does not reach the backend.
func TestQueuedRequestReadsTheFenceAgain(t *testing.T) {
	app := &blockingApp{release: make(chan struct{})}
	p, f, front, _ := newTestProxy(t, app, func(o *Options) {
		o.MaxBackendConns = 1
		o.BackendQueueTimeout = 5 * time.Second
	})
	held := make(chan int, 1)
	go func() {
		res, err := http.Get(front.URL + "/hold")
		if err == nil {
			res.Body.Close()
			held <- res.StatusCode
		}
	}()
	waitUntil(t, "the first request at the backend", func() bool { return app.holding.Load() == 1 })
	queued := make(chan int, 1)
	go func() {
		res, err := http.Get(front.URL + "/queued")
		if err == nil {
			res.Body.Close()
			queued <- res.StatusCode
		}
	}()
	waitUntil(t, "a queued request", func() bool { _, w, _ := p.BackendSlots(); return w == 1 })
	f.ok.Store(false) // demoted while it waits
	close(app.release)
	if code := <-queued; code != http.StatusServiceUnavailable {
		t.Errorf("queued request after a demotion: %d, want 503", code)
	}
	<-held
	if app.seen.Load() != 1 {
		t.Errorf("the app saw %d requests, want only the first", app.seen.Load())
	}
}

// TestCancelledRequestsKeepTheirConnection: clients that go away while the
// backend works on their request (a rapid-reset loop is many of those) do
// not cost a backend connection each: the answer is read and dropped and
// the connection reused. The handler still ends within the salvage window
// when the backend says nothing more.
func TestCancelledRequestsKeepTheirConnection(t *testing.T) {
	var conns atomic.Int32
	arrived, answer := make(chan struct{}), make(chan struct{})
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/quiet" {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
			http.NewResponseController(w).Flush()
			<-r.Context().Done()
			return
		}
		arrived <- struct{}{}
		<-answer // the client is gone by then
		io.WriteString(w, "late answer")
	}))
	be.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	be.Start()
	t.Cleanup(be.Close)
	p := proxyTo(t, be.URL, true)
	for range 50 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			p.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "http://app.example.com/work", nil).WithContext(ctx))
		}()
		<-arrived // the backend works on it: the client goes away
		cancel()
		time.Sleep(time.Millisecond)
		answer <- struct{}{}
		<-done
	}
	if n := conns.Load(); n > 3 {
		t.Errorf("50 cancelled requests opened %d backend connections, want them reused", n)
	}
	if p.StatusCounts()[PathLocal][4] != 50 {
		t.Errorf("status counts %v, want 50 4xx (499)", p.StatusCounts()[PathLocal])
	}

	// Gone in the middle of a stream that says nothing more: cut at the
	// salvage window, not held.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { recover() }() // ErrAbortHandler
		p.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "http://app.example.com/quiet", nil).WithContext(ctx))
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(salvageWindow + 2*time.Second):
		t.Fatal("the handler of a gone client outlived the salvage window")
	}
}

// slowClient opens a connection, sends raw and then nothing more; it
// returns the connection's reader.
func slowClient(t *testing.T, addr, raw string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, raw)
	return c, bufio.NewReader(c)
}

// TestSlowBodies: a client that trickles a small body holds no backend
// slot (it is read in full first) and gets 408 when it stalls; a big,
// streamed body that stalls fails with 408 too and frees its slot. None
// of it counts against the backend.
func TestSlowBodies(t *testing.T) {
	app := &blockingApp{release: make(chan struct{})}
	close(app.release)
	p, _, front, obs := newTestProxy(t, app, func(o *Options) {
		o.MaxBackendConns = 1
		o.BackendQueueTimeout = 100 * time.Millisecond
		o.ClientTimeout = 300 * time.Millisecond
		o.BufferBody = 1024
	})
	addr := strings.TrimPrefix(front.URL, "http://")
	var slow []*bufio.Reader
	for range 5 {
		_, br := slowClient(t, addr, "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
		slow = append(slow, br)
	}
	// The one backend slot is free for everyone else meanwhile.
	res, err := http.Get(front.URL + "/x")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("a normal request beside five trickling bodies: %v %v", res, err)
	}
	res.Body.Close()
	start := time.Now()
	for _, br := range slow {
		res, err := http.ReadResponse(br, nil)
		if err != nil || res.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("stalled small body: %v %v, want 408", res, err)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("stalled bodies answered after %v", d)
	}
	if app.seen.Load() != 1 {
		t.Errorf("the app saw %d requests, want only the normal one", app.seen.Load())
	}

	// Bigger than the buffer: streamed, and cut when it stalls.
	_, br := slowClient(t, addr, "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"+strings.Repeat("z", 2000))
	res, err = http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("stalled big body: %v %v, want 408", res, err)
	}
	waitUntil(t, "the slot back", func() bool { in, _, _ := p.BackendSlots(); return in == 0 })
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.errs != 0 {
		t.Errorf("%d slow clients counted against the backend", obs.errs)
	}
}

// TestSlowReader: a client that does not read a big answer is cut after
// the client timeout; its backend slot and in-flight count come back.
func TestSlowReader(t *testing.T) {
	big := strings.Repeat("x", 64<<20)
	for _, fast := range []bool{true, false} {
		p, _, front, _ := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, big)
		}), func(o *Options) {
			o.MaxBackendConns = 4
			o.ClientTimeout = 300 * time.Millisecond
			o.NoFastPath = !fast
		})
		c, _ := slowClient(t, strings.TrimPrefix(front.URL, "http://"), "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
		c.(*net.TCPConn).SetReadBuffer(4096)
		waitUntil(t, "the request in flight", func() bool { return p.InFlight() == 1 })
		start := time.Now()
		waitUntil(t, "the stalled answer cut", func() bool { return p.InFlight() == 0 })
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("fast=%v: cut after %v", fast, d)
		}
		waitUntil(t, "the slot back", func() bool { in, _, _ := p.BackendSlots(); return in == 0 })
	}
}

// TestHTTP2ZeroWindowReader: an HTTP/2 client that keeps its flow-control
// window at zero cannot hold requests at the backend past the client
// timeout.
func TestHTTP2ZeroWindowReader(t *testing.T) {
	p, _, _, _ := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 1<<20))
	}), func(o *Options) {
		o.MaxBackendConns = 50
		o.ClientTimeout = 300 * time.Millisecond
	})
	front, _ := h2Front(t, p)
	// The front's server gets the main listener's limits.
	ServerLimits{MaxStreams: 100, ClientTimeout: 300 * time.Millisecond}.Apply(front.Config)
	conn, err := tls.Dial("tcp", strings.TrimPrefix(front.URL, "https://"), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, http2.ClientPreface)
	fr := http2.NewFramer(conn, conn)
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for id := uint32(1); id < 40; id += 2 {
		hb.Reset()
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "app.example.com"}, {":path", "/"}} {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
	}
	waitUntil(t, "requests in flight", func() bool { return p.InFlight() > 0 })
	start := time.Now()
	waitUntil(t, "the stalled streams ended", func() bool { in, _, _ := p.BackendSlots(); return in == 0 && p.InFlight() == 0 })
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("zero-window streams held the backend for %v", d)
	}
}

// TestCancelStormReusesConnections: 50 clients that each cancel 40
// requests at random moments (before, during or after the dial and the
// backend's answer), as a rapid-reset loop does, leave the backend with
// about one connection per concurrent client, not one per request: a
// cancelled dial's connection goes to the pool.
func TestCancelStormReusesConnections(t *testing.T) {
	var conns atomic.Int32
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(10 * time.Millisecond)
		io.WriteString(w, "late answer")
	}))
	be.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	be.Start()
	t.Cleanup(be.Close)
	p := proxyTo(t, be.URL, true)
	var wg sync.WaitGroup
	for g := range 50 {
		wg.Go(func() {
			for i := range 40 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration((g*7+i*13)%20)*time.Millisecond)
				func() {
					defer func() { recover() }() // ErrAbortHandler
					p.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "http://app.example.com/work", nil).WithContext(ctx))
				}()
				cancel()
			}
		})
	}
	wg.Wait()
	if n := conns.Load(); n > 75 {
		t.Errorf("2,000 requests of 50 clients, cancelled at random, opened %d backend connections; want about 50", n)
	}
}
