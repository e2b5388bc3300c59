package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fakeFence struct {
	term atomic.Uint64
	ok   atomic.Bool
}

func (f *fakeFence) Fence() (uint64, bool) { return f.term.Load(), f.ok.Load() }

type countingObserver struct {
	mu      sync.Mutex
	started int
	done    []int
	errs    int
}

func (o *countingObserver) RequestStarted() { o.mu.Lock(); o.started++; o.mu.Unlock() }
func (o *countingObserver) RequestDone(status int, proxyErr bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.done = append(o.done, status)
	if proxyErr {
		o.errs++
	}
}

func newTestProxy(t *testing.T, backend http.Handler, mut func(*Options)) (*Proxy, *fakeFence, *httptest.Server, *countingObserver) {
	t.Helper()
	be := httptest.NewServer(backend)
	t.Cleanup(be.Close)
	u, _ := url.Parse(be.URL)
	f := &fakeFence{}
	f.term.Store(7)
	f.ok.Store(true)
	obs := &countingObserver{}
	o := Options{Backend: u, FencingHeader: "Baton-Term", Fence: f, Observer: obs, RetryAfter: 6 * time.Second}
	if mut != nil {
		mut(&o)
	}
	p, err := New(o, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	front := httptest.NewServer(p)
	t.Cleanup(front.Close)
	return p, f, front, obs
}

func TestFencedRequestIsNeverSentToBackend(t *testing.T) {
	var hits atomic.Int32
	_, f, front, _ := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
	}), nil)
	f.ok.Store(false)
	res, err := http.Get(front.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503", res.StatusCode)
	}
	if got := res.Header.Get("Retry-After"); got != "6" {
		t.Errorf("Retry-After = %q, want 6", got)
	}
	if !res.Close {
		t.Error("a refused request must close the connection so the client reconnects through the load balancer")
	}
	if hits.Load() != 0 {
		t.Fatalf("backend got %d requests while fenced", hits.Load())
	}
	if !strings.Contains(string(body), "not active") {
		t.Errorf("body = %q", body)
	}
}

func TestProxyHeaders(t *testing.T) {
	type seen struct{ host, term, xff, xfh, xfp string }
	got := make(chan seen, 1)
	_, _, front, obs := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Host, r.Header.Get("Baton-Term"), r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Forwarded-Proto")}
		io.WriteString(w, "hello")
	}), nil)
	req, _ := http.NewRequest("GET", front.URL+"/p?q=1", nil)
	req.Host = "app.example.com"
	req.Header.Set("Baton-Term", "999")          // a client cannot forge the term
	req.Header.Set("X-Forwarded-For", "6.6.6.6") // nor its address
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "hello" {
		t.Fatalf("body %q", b)
	}
	s := <-got
	want := seen{host: "app.example.com", term: "7", xff: "127.0.0.1", xfh: "app.example.com", xfp: "http"}
	if s != want {
		t.Errorf("backend saw %+v, want %+v", s, want)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.started != 1 || len(obs.done) != 1 || obs.done[0] != 200 || obs.errs != 0 {
		t.Errorf("observer: started=%d done=%v errs=%d", obs.started, obs.done, obs.errs)
	}
}

func TestFencingHeaderDisabled(t *testing.T) {
	got := make(chan string, 1)
	_, _, front, _ := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Baton-Term")
	}), func(o *Options) { o.FencingHeader = "" })
	res, err := http.Get(front.URL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if h := <-got; h != "" {
		t.Errorf("fencing header sent although disabled: %q", h)
	}
}

func TestStreamingIsFlushed(t *testing.T) {
	release := make(chan struct{})
	_, _, front, _ := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "data: second\n\n")
	}), nil)
	defer close(release)
	res, err := http.Get(front.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event not flushed before the response ended: %q, %v", line, err)
	}
}

func TestWebSocketUpgrade(t *testing.T) {
	p, _, front, _ := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" || r.Header.Get("Baton-Term") != "7" {
			http.Error(w, "no upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n') // echo one line
		brw.WriteString("echo " + line)
		brw.Flush()
	}), nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(front.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", res.StatusCode)
	}
	io.WriteString(conn, "ping\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "echo ping\n" {
		t.Fatalf("echo: %q %v", line, err)
	}
	conn.Close()
	// Recorded as the 101 it was, not as a client that went away (499).
	waitUntil(t, "the upgrade recorded", func() bool { return p.StatusCounts()[PathLocal][1] == 1 })
	if c := p.StatusCounts()[PathLocal]; c[4] != 0 {
		t.Errorf("status classes %v: the upgrade counted as 4xx", c)
	}
}

func TestBackendErrorsMapToStatus(t *testing.T) {
	t.Run("refused is 502", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now
		core, logs := observer.New(zap.WarnLevel)
		u, _ := url.Parse("http://" + addr)
		f := &fakeFence{}
		f.ok.Store(true)
		obs := &countingObserver{}
		p, err := New(Options{Backend: u, Fence: f, Observer: obs}, zap.New(core))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		front := httptest.NewServer(p)
		defer front.Close()
		for range 5 {
			res, err := http.Get(front.URL)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusBadGateway {
				t.Fatalf("status %d, want 502", res.StatusCode)
			}
		}
		if n := logs.FilterMessage("backend request failed").Len(); n != 1 {
			t.Errorf("logged %d times for 5 failures, want once per change of state", n)
		}
		if obs.errs != 5 {
			t.Errorf("observer saw %d proxy errors, want 5", obs.errs)
		}
	})
	t.Run("slow is 504", func(t *testing.T) {
		block := make(chan struct{})
		_, _, front, _ := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-block:
			case <-r.Context().Done():
			}
		}), func(o *Options) { o.ResponseHeaderTimeout = 100 * time.Millisecond })
		defer close(block)
		res, err := http.Get(front.URL)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusGatewayTimeout {
			t.Fatalf("status %d, want 504", res.StatusCode)
		}
	})
	t.Run("client gone is 499", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if got := ErrorStatus(ctx, context.Canceled); got != StatusClientClosedRequest {
			t.Fatalf("got %d", got)
		}
	})
}

func TestWaitIdle(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	p, _, front, _ := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	}), nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, err := http.Get(front.URL)
		if err == nil {
			res.Body.Close()
		}
	}()
	<-entered
	if p.InFlight() != 1 {
		t.Fatalf("in flight = %d", p.InFlight())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	if left := p.WaitIdle(ctx); left != 1 {
		t.Fatalf("WaitIdle gave up with %d left, want 1", left)
	}
	cancel()
	close(release)
	<-done
	if left := p.WaitIdle(context.Background()); left != 0 {
		t.Fatalf("left %d", left)
	}
}

func TestProbe(t *testing.T) {
	var up atomic.Bool
	p := NewProbe("/probe", nil, func() (bool, string) {
		if up.Load() {
			return true, "active"
		}
		return false, "standby"
	}, zap.NewNop())
	cases := []struct {
		name, method, path string
		up                 bool
		code               int
		body               string
	}{
		{"active", "GET", "/probe", true, 200, "active\n"},
		{"standby", "GET", "/probe", false, 503, "standby\n"},
		{"head", "HEAD", "/probe", true, 200, ""},
		{"post", "POST", "/probe", true, 405, "method not allowed\n"},
		{"other path", "GET", "/", true, 404, "404 page not found\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up.Store(c.up)
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
			if rec.Code != c.code || rec.Body.String() != c.body {
				t.Errorf("%s %s: %d %q, want %d %q", c.method, c.path, rec.Code, rec.Body.String(), c.code, c.body)
			}
		})
	}
}

func TestProbeAllowList(t *testing.T) {
	p := NewProbe("/probe", []netip.Prefix{netip.MustParsePrefix("168.63.129.16/32"), netip.MustParsePrefix("::1/128")},
		func() (bool, string) { return true, "active" }, zap.NewNop())
	for _, c := range []struct {
		remote string
		code   int
	}{
		{"168.63.129.16:4000", 200},
		{"[::ffff:168.63.129.16]:4000", 200},
		{"[::1]:5", 200},
		{"10.0.0.4:4000", 403},
		{"garbage", 403},
	} {
		req := httptest.NewRequest("GET", "/probe", nil)
		req.RemoteAddr = c.remote
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, req)
		if rec.Code != c.code {
			t.Errorf("from %s: %d, want %d", c.remote, rec.Code, c.code)
		}
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	u, _ := url.Parse("ftp://x")
	if _, err := New(Options{Backend: u, Fence: &fakeFence{}}, zap.NewNop()); err == nil {
		t.Error("ftp backend accepted")
	}
	u, _ = url.Parse("http://127.0.0.1:1")
	if _, err := New(Options{Backend: u}, zap.NewNop()); err == nil {
		t.Error("missing fence accepted")
	}
}

func BenchmarkServeFenced(b *testing.B) {
	u, _ := url.Parse("http://127.0.0.1:1")
	f := &fakeFence{}
	p, _ := New(Options{Backend: u, Fence: f}, zap.NewNop())
	req := httptest.NewRequest("GET", "/", nil)
	b.ReportAllocs()
	for b.Loop() {
		p.ServeHTTP(discard{}, req)
	}
}

type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}
