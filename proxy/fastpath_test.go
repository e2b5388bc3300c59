package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

// scriptBackend is a raw HTTP/1.1 origin: it records each request's header
// block as it arrived and answers with a canned byte string chosen by the
// request's path (close: the connection is closed after the answer).
type scriptBackend struct {
	testConns
	answers map[string]scriptAnswer
	seen    []string // request line + sorted header lines, one entry per request; guarded by mu
}

// testConns is a test backend's listener: it serves each connection it
// accepts on a goroutine of its own, counts them (conns, open: guarded
// by mu) and closes what is open when the test ends.
type testConns struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns int
	open  map[net.Conn]struct{}
}

// start accepts on a new loopback listener until the test ends.
func (tc *testConns) start(t *testing.T, serve func(net.Conn)) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tc.ln, tc.open = ln, map[net.Conn]struct{}{}
	tc.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc.mu.Lock()
			tc.conns++
			tc.open[c] = struct{}{}
			tc.mu.Unlock()
			tc.wg.Go(func() {
				defer tc.done(c)
				serve(c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		tc.mu.Lock()
		for c := range tc.open {
			c.Close()
		}
		tc.mu.Unlock()
		tc.wg.Wait()
	})
}

func (tc *testConns) done(c net.Conn) {
	tc.mu.Lock()
	delete(tc.open, c)
	tc.mu.Unlock()
	c.Close()
}

type scriptAnswer struct {
	raw   string
	close bool
}

func newScriptBackend(t *testing.T, answers map[string]scriptAnswer) *scriptBackend {
	t.Helper()
	sb := &scriptBackend{answers: answers}
	sb.start(t, sb.serve)
	return sb
}

func (sb *scriptBackend) serve(c net.Conn) {
	tp := textproto.NewReader(bufio.NewReader(c))
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		var hdr []string
		for {
			h, err := tp.ReadLine()
			if err != nil {
				return
			}
			if h == "" {
				break
			}
			hdr = append(hdr, h)
		}
		slices.Sort(hdr)
		sb.mu.Lock()
		sb.seen = append(sb.seen, line+"\n"+strings.Join(hdr, "\n"))
		sb.mu.Unlock()
		path := strings.Fields(line)[1]
		path, _, _ = strings.Cut(path, "?")
		a, ok := sb.answers[path]
		if !ok {
			a = scriptAnswer{raw: "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"}
		}
		if _, err := io.WriteString(c, a.raw); err != nil || a.close {
			return
		}
	}
}

func (sb *scriptBackend) last() string {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if len(sb.seen) == 0 {
		return ""
	}
	return sb.seen[len(sb.seen)-1]
}

func (sb *scriptBackend) connCount() int {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.conns
}

// frontFor serves p on a test server.
func frontFor(t *testing.T, p *Proxy) *httptest.Server {
	t.Helper()
	front := httptest.NewUnstartedServer(p)
	front.Config = NewServer(p, zap.NewNop())
	startFront(front)
	t.Cleanup(front.Close)
	return front
}

func proxyTo(t *testing.T, backend string, fast bool) *Proxy {
	t.Helper()
	u, _ := url.Parse(backend)
	f := &fakeFence{}
	f.term.Store(7)
	f.ok.Store(true)
	p, err := New(Options{Backend: u, FencingHeader: "Baton-Term", Fence: f, RetryAfter: time.Second, ForwardSecret: testSecret}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if !fast {
		p.fast = nil
	}
	t.Cleanup(p.Close)
	return p
}

// observed is what a client sees of one answer.
type observed struct {
	status      int
	header      http.Header
	length      int64
	chunked     bool
	body        string
	trailer     http.Header
	informative []string
	close       bool // Connection: close (send only)
}

func fetch(t *testing.T, c *http.Client, method, u string, hdr http.Header) observed {
	t.Helper()
	var info []string
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			info = append(info, fmt.Sprint(code, " ", h.Get("Link")))
			return nil
		},
	})
	req, _ := http.NewRequestWithContext(ctx, method, u, nil)
	for k, vv := range hdr {
		req.Header[k] = vv
	}
	req.Host = "app.example.com" // the same for both fronts
	if h := hdr.Get("Host"); h != "" {
		req.Host = h
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, u, err)
	}
	res.Header.Del("Date")
	return observed{status: res.StatusCode, header: res.Header, length: res.ContentLength,
		chunked: slices.Contains(res.TransferEncoding, "chunked"), body: string(b), trailer: res.Trailer, informative: info}
}

// TestFastPathMatchesStandardPath sends the same requests through the fast
// path and through httputil.ReverseProxy and compares what the backend
// received and what the client got.
func TestFastPathMatchesStandardPath(t *testing.T) {
	const ok13 = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World\n"
	sb := newScriptBackend(t, map[string]scriptAnswer{
		"/":       {raw: ok13},
		"/a%2Fb/": {raw: ok13},
		"/hop": {raw: "HTTP/1.1 200 OK\r\nConnection: X-Resp-Hop\r\nX-Resp-Hop: 1\r\nKeep-Alive: timeout=5\r\n" +
			"Proxy-Authenticate: Basic\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-End: kept\r\nContent-Length: 2\r\n\r\nok"},
		// (A Content-Type on the streamed answers: without one, whether
		// net/http sniffs one depends on ReverseProxy's flush timer.)
		"/chunked": {raw: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n" +
			"5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: abc\r\n\r\n"},
		"/undeclared-trailer": {raw: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"2\r\nhi\r\n0\r\nX-Late: yes\r\n\r\n"},
		"/204":    {raw: "HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n"},
		"/304":    {raw: "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"},
		"/hints":  {raw: "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n" + ok13},
		"/eof":    {raw: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", close: true},
		"/close":  {raw: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye", close: true},
		"/http10": {raw: "HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nold!", close: true},
		"/sse":    {raw: "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 11\r\n\r\ndata: one\n\n"},
		"/head":   {raw: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n"},
	})
	for _, h2 := range []bool{false, true} {
		fastP, stdP := proxyTo(t, "http://"+sb.ln.Addr().String(), true), proxyTo(t, "http://"+sb.ln.Addr().String(), false)
		fast, std := frontFor(t, fastP), frontFor(t, stdP)
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableCompression: true}}
		if h2 {
			fast, _ = h2Front(t, fastP)
			std, _ = h2Front(t, stdP)
			client = h2Client()
			client.Transport.(*http.Transport).DisableCompression = true
		}
		t.Run(map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2], func(t *testing.T) {
			defer client.CloseIdleConnections()
			compareFastAndStandard(t, sb, client, fast.URL, std.URL, h2)
		})
		fastP.fast.mu.Lock()
		pooled := len(fastP.fast.idle)
		fastP.fast.mu.Unlock()
		if pooled == 0 {
			t.Errorf("h2=%v: no backend connection in the fast path's pool: the fast path was not taken", h2)
		}
	}
	// The fast path really was taken: one pooled connection per client kind
	// carried the keep-alive answers (the standard path has its own).
	if sb.connCount() > 32 {
		t.Errorf("backend saw %d connections: keep-alive is not reused", sb.connCount())
	}
}

func compareFastAndStandard(t *testing.T, sb *scriptBackend, client *http.Client, fastURL, stdURL string, h2 bool) {
	for _, tc := range []struct {
		name, method, path string
		hdr                http.Header
	}{
		{"plain", "GET", "/", nil},
		{"query and escaped path", "GET", "/a%2Fb/?x=1&y=%20z&x=2", nil},
		{"head", "HEAD", "/head", nil},
		{"hop-by-hop request headers", "GET", "/", http.Header{
			"Connection": {"X-Custom, keep-alive"}, "X-Custom": {"secret"}, "Keep-Alive": {"5"}, "Te": {"trailers, deflate"},
			"Proxy-Authorization": {"Basic x"}, "Proxy-Connection": {"keep-alive"}, "X-Other": {"a", "b"}}},
		{"client cannot set forwarding or fencing headers", "GET", "/", http.Header{
			"X-Forwarded-For": {"1.2.3.4"}, "Forwarded": {"for=1.2.3.4"}, "X-Forwarded-Host": {"evil"},
			"X-Forwarded-Proto": {"https"}, "Baton-Term": {"999"}}},
		{"forwarded by a peer: what its marker vouches for", "GET", "/", http.Header{
			ForwardedHeader:   {signForward(testSecret, "node-b", time.Now(), "10.0.0.1", "https", "app.example.com")},
			"X-Forwarded-For": {"10.0.0.1"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"app.example.com"}}},
		{"a marker that does not verify vouches for nothing", "GET", "/", http.Header{
			ForwardedHeader:   {signForward(testSecret, "node-b", time.Now(), "10.0.0.1", "https", "app.example.com")},
			"X-Forwarded-For": {"6.6.6.6"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"app.example.com"}}},
		{"host kept", "GET", "/", http.Header{"Host": {"app.example.com:8443"}}},
		{"hop-by-hop response headers", "GET", "/hop", nil},
		{"chunked with trailer", "GET", "/chunked", nil},
		{"undeclared trailer", "GET", "/undeclared-trailer", nil},
		{"204", "GET", "/204", nil},
		{"304", "GET", "/304", http.Header{"If-None-Match": {`"x"`}}},
		{"103 early hints", "GET", "/hints", nil},
		{"close-delimited body", "GET", "/eof", nil},
		{"connection close", "GET", "/close", nil},
		{"HTTP/1.0 backend", "GET", "/http10", nil},
		{"event stream", "GET", "/sse", nil},
		{"not found", "GET", "/nothing", nil},
	} {
		if h2 && tc.name == "hop-by-hop request headers" {
			continue // an HTTP/2 client cannot send them
		}
		t.Run(tc.name, func(t *testing.T) {
			gotFast := fetch(t, client, tc.method, fastURL+tc.path, tc.hdr)
			sawFast := sb.last()
			gotStd := fetch(t, client, tc.method, stdURL+tc.path, tc.hdr)
			sawStd := sb.last()
			if sawFast != sawStd {
				t.Errorf("backend saw\n--- fast path ---\n%s\n--- standard path ---\n%s", sawFast, sawStd)
			}
			if fmt.Sprint(gotFast) != fmt.Sprint(gotStd) {
				t.Errorf("client got\n--- fast path ---\n%+v\n--- standard path ---\n%+v", gotFast, gotStd)
			}
			if gotFast.status == 0 || (tc.method == "GET" && gotFast.status == 200 && gotFast.body == "") || gotStd.status == 0 {
				t.Errorf("nothing useful came back: %+v", gotFast)
			}
		})
	}
}

// TestFastPathRetriesAClosedIdleConnection: a backend that closes idle
// connections behind the proxy's back costs no request.
func TestFastPathRetriesAClosedIdleConnection(t *testing.T) {
	sb := newScriptBackend(t, map[string]scriptAnswer{
		// No Connection: close - the backend just hangs up after answering.
		"/": {raw: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", close: true},
	})
	p := proxyTo(t, "http://"+sb.ln.Addr().String(), true)
	front := frontFor(t, p)
	for i := range 5 {
		res, err := http.Get(front.URL)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("request %d: status %d, want 200", i, res.StatusCode)
		}
		// Wait until the backend has hung up, so the next request finds
		// a dead connection in the pool.
		waitFor(t, func() bool { sb.mu.Lock(); defer sb.mu.Unlock(); return len(sb.open) == 0 })
	}
	if n := sb.connCount(); n < 5 {
		t.Errorf("backend saw %d connections for 5 requests on hung-up connections", n)
	}
	if c := p.StatusCounts()[PathLocal]; c[5] != 0 {
		t.Errorf("%d requests failed", c[5])
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestFastPathUnsolicitedBytes: bytes after an answer spoil the
// connection; it is not reused, so they never become the next answer.
func TestFastPathUnsolicitedBytes(t *testing.T) {
	sb := newScriptBackend(t, map[string]scriptAnswer{
		"/": {raw: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"},
	})
	front := frontFor(t, proxyTo(t, "http://"+sb.ln.Addr().String(), true))
	for range 3 {
		res, err := http.Get(front.URL)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(b) != "ok" {
			t.Fatalf("body %q, want ok", b)
		}
	}
	if n := sb.connCount(); n != 3 {
		t.Errorf("backend saw %d connections, want 3 (none reused)", n)
	}
}

// TestFastPathRefusesToWriteBadHeaders: a header the server should never
// have let through (a handler further up could build one) is not written
// by hand; the standard path then refuses it too.
func TestFastPathRefusesToWriteBadHeaders(t *testing.T) {
	sb := newScriptBackend(t, map[string]scriptAnswer{"/": {raw: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"}})
	p := proxyTo(t, "http://"+sb.ln.Addr().String(), true)
	for _, h := range []http.Header{
		{"X-A": {"a\r\nX-Injected: 1"}},
		{"X-A\r\nX-Injected": {"1"}},
		{"X-A": {"nul\x00"}},
	} {
		r := httptest.NewRequest("GET", "http://app.example.com/", nil)
		r.Header = h
		w := httptest.NewRecorder()
		p.ServeHTTP(w, r)
		if w.Code != http.StatusBadGateway {
			t.Errorf("%q: status %d, want 502", h, w.Code)
		}
	}
	if seen := sb.last(); seen != "" {
		t.Errorf("the backend received a request: %q", seen)
	}
}

// TestFastPathClientGoneWhileWaiting: the client hanging up while the
// backend thinks ends the exchange (499 to the observer, the connection
// dropped), as with http.Transport.
func TestFastPathClientGoneWhileWaiting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	closed, asked := make(chan struct{}), make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Read(make([]byte, 4096)) // the request's first bytes
		close(asked)
		io.Copy(io.Discard, c) // never answers; returns when the proxy hangs up
		close(closed)
	}()
	obs := &countingObserver{}
	p := proxyTo(t, "http://"+ln.Addr().String(), true)
	p.opts.Observer = obs
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequest("GET", "http://app.example.com/", nil).WithContext(ctx)
	done := make(chan struct{})
	go func() { defer close(done); p.ServeHTTP(httptest.NewRecorder(), r) }()
	// Gone while waiting for the answer, not during the dial (a connection
	// dialled for a client that left is kept for the next request).
	select {
	case <-asked:
	case <-time.After(5 * time.Second):
		t.Fatal("the request did not reach the backend")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the request did not end when the client went away")
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the backend connection was not closed")
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.done) != 1 || obs.done[0] != StatusClientClosedRequest || obs.errs != 0 {
		t.Errorf("observer saw %v (%d errors), want one 499 that is not a backend error", obs.done, obs.errs)
	}
}

func TestFastEligible(t *testing.T) {
	for _, tc := range []struct {
		name string
		mut  func(r *http.Request)
		want bool
	}{
		{"GET", func(r *http.Request) {}, true},
		{"HEAD", func(r *http.Request) { r.Method = "HEAD" }, true},
		{"POST without a body", func(r *http.Request) { r.Method = "POST" }, true},
		{"DELETE", func(r *http.Request) { r.Method = "DELETE" }, true},
		{"POST with a body", func(r *http.Request) {
			r.Method = "POST"
			r.Body = io.NopCloser(strings.NewReader("x"))
			r.ContentLength = 1
		}, true},
		{"POST chunked", func(r *http.Request) {
			r.Method = "POST"
			r.Body = io.NopCloser(strings.NewReader("x"))
			r.TransferEncoding = []string{"chunked"}
			r.ContentLength = -1
		}, true},
		{"GET with a body", func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader("x")); r.ContentLength = 1 }, true},
		{"GET chunked (http.Transport probes it)", func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader("x"))
			r.TransferEncoding = []string{"chunked"}
			r.ContentLength = -1
		}, false},
		{"length without a body", func(r *http.Request) { r.Method = "POST"; r.ContentLength = 1 }, false},
		{"upgrade", func(r *http.Request) { r.Header.Set("Upgrade", "websocket") }, false},
		{"expect", func(r *http.Request) {
			r.Method = "PUT"
			r.Header.Set("Expect", "100-continue")
			r.Body = io.NopCloser(strings.NewReader("x"))
			r.ContentLength = 1
		}, true},
		{"trailer", func(r *http.Request) { r.Trailer = http.Header{} }, false},
		{"opaque", func(r *http.Request) { r.URL.Opaque = "//x/y" }, false},
		{"OPTIONS *", func(r *http.Request) { r.Method = "OPTIONS"; r.URL.Path = "*" }, false},
		{"HTTP/1 body stream", func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader("")) }, false},
		{"HTTP/2 ended stream", func(r *http.Request) { r.ProtoMajor = 2; r.Body = io.NopCloser(strings.NewReader("")) }, true},
		{"HTTP/2 GET body of unknown length", func(r *http.Request) {
			r.ProtoMajor = 2
			r.Body = io.NopCloser(strings.NewReader("x"))
			r.ContentLength = -1
		}, false},
		{"HTTP/2 POST body of unknown length", func(r *http.Request) {
			r.ProtoMajor = 2
			r.Method = "POST"
			r.Body = io.NopCloser(strings.NewReader("x"))
			r.ContentLength = -1
		}, true},
	} {
		r := httptest.NewRequest("GET", "http://app.example.com/x", nil)
		tc.mut(r)
		if got := fastEligible(r); got != tc.want {
			t.Errorf("%s: fastEligible = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestStreamingHeaderIsFlushed: an event stream's header reaches the
// client before its first event, as with httputil.ReverseProxy.
func TestStreamingHeaderIsFlushed(t *testing.T) {
	for _, fast := range []bool{true, false} {
		release := make(chan struct{})
		be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		front := frontFor(t, proxyTo(t, be.URL, fast))
		c := &http.Client{Timeout: 5 * time.Second}
		res, err := c.Get(front.URL)
		close(release)
		if err != nil {
			t.Fatalf("fast=%v: the header did not come before the body: %v", fast, err)
		}
		res.Body.Close()
		c.CloseIdleConnections()
		be.Close()
	}
}

func TestFastPathOnlyForPlainBackendRoots(t *testing.T) {
	for _, tc := range []struct {
		backend string
		no      bool
		want    bool
	}{
		{"http://127.0.0.1:8080", false, true},
		{"http://127.0.0.1:8080/", false, true},
		{"http://app.local", false, true},
		{"http://127.0.0.1:8080", true, false},
		{"https://127.0.0.1:8443", false, false},
		{"http://127.0.0.1:8080/base", false, false},
		{"http://127.0.0.1:8080/?a=b", false, false},
	} {
		u, _ := url.Parse(tc.backend)
		p, err := New(Options{Backend: u, Fence: &fakeFence{}, NoFastPath: tc.no}, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		if got := p.fast != nil; got != tc.want {
			t.Errorf("%s (NoFastPath %v): fast path %v, want %v", tc.backend, tc.no, got, tc.want)
		}
		if p.fast != nil && u.Port() == "" && p.fast.addr != "app.local:80" {
			t.Errorf("%s: dials %s", tc.backend, p.fast.addr)
		}
		p.Close()
	}
}

// TestNoResponseHeaderTimeout: a negative timeout is no limit on both
// paths (backend.response_header_timeout = "0s").
func TestNoResponseHeaderTimeout(t *testing.T) {
	for _, fast := range []bool{true, false} {
		be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(150 * time.Millisecond) // longer than the short timeout below
			io.WriteString(w, "late")
		}))
		u, _ := url.Parse(be.URL)
		f := &fakeFence{}
		f.ok.Store(true)
		for _, tc := range []struct {
			timeout time.Duration
			want    int
		}{{-1, 200}, {50 * time.Millisecond, 504}} {
			p, err := New(Options{Backend: u, Fence: f, ResponseHeaderTimeout: tc.timeout, NoFastPath: !fast}, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			w := httptest.NewRecorder()
			p.ServeHTTP(w, httptest.NewRequest("GET", "http://app.example.com/", nil))
			if w.Code != tc.want {
				t.Errorf("fast=%v timeout %v: status %d, want %d", fast, tc.timeout, w.Code, tc.want)
			}
			p.Close()
		}
		be.Close()
	}
}

// TestFastPathMatchesStandardPathRandomHeaders: random header sets
// (hop-by-hop, Connection lists, forwarding headers, repeats) reach the
// backend the same way on both paths.
func TestFastPathMatchesStandardPathRandomHeaders(t *testing.T) {
	sb := newScriptBackend(t, map[string]scriptAnswer{"/": {raw: "HTTP/1.1 204 No Content\r\n\r\n"}})
	fast, std := frontFor(t, proxyTo(t, "http://"+sb.ln.Addr().String(), true)), frontFor(t, proxyTo(t, "http://"+sb.ln.Addr().String(), false))
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	names := []string{"Connection", "Keep-Alive", "Te", "Trailer", "Proxy-Authorization", "Proxy-Connection",
		"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded", "Baton-Term", ForwardedHeader,
		"X-A", "X-B", "Accept", "Cookie", "Authorization", "Cache-Control"}
	values := []string{"a", "x-a", "X-B, close", "trailers", "gzip, trailers", "10.1.2.3", "1.1.1.1, 2.2.2.2",
		"keep-alive, X-A", "", "  spaced  ", "v=1; w=2", "Te"}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		h := http.Header{}
		for range rng.IntN(8) {
			k := names[rng.IntN(len(names))]
			h[k] = append(h[k], values[rng.IntN(len(values))])
		}
		fetch(t, client, "GET", fast.URL+"/", h)
		sawFast := sb.last()
		fetch(t, client, "GET", std.URL+"/", h)
		if sawStd := sb.last(); sawFast != sawStd {
			t.Fatalf("case %d %q: backend saw\n--- fast path ---\n%s\n--- standard path ---\n%s", i, h, sawFast, sawStd)
		}
	}
}

// TestSmugglingAttemptsThroughTheFrontDoor sends ambiguous or malformed
// requests on a raw connection through the whole front door (net/http's
// server, then the fast path or the standard path). Malformed ones are
// refused by the server and never reach the backend; and the requests the
// backend receives whole are exactly those the client got a 200 for: baton
// and the backend never disagree on where a request ends. A last request
// with Connection: close ends each exchange.
func TestSmugglingAttemptsThroughTheFrontDoor(t *testing.T) {
	const end = "GET /end HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	for _, tc := range []struct {
		name    string
		raw     string
		refused bool // the server answers 4xx/5xx itself and nothing is proxied
	}{
		// TE wins over CL (RFC 9112, 6.3): the empty chunked body ends the
		// first request and /smuggled is a request of its own, to both.
		{"CL and TE", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n" + end, false},
		{"two different CLs", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 30\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n" + end, true},
		{"TE other than chunked", "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + end, true},
		{"NUL in a value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n" + end, true},
		{"CR in a value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\rX-B: b\r\n\r\n" + end, true},
		{"space before colon", "GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n" + end, true},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" + end, true},
		// Folded lines are unfolded (RFC 9112, 5.2 allows it).
		{"obsolete line folding", "GET / HTTP/1.1\r\nHost: a\r\nX-A: a\r\n b\r\n\r\n" + end, false},
		{"bad chunk size", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n" + end, false},
		{"pipelined GETs", "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n" + end, false},
	} {
		for _, fast := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/fast=%v", tc.name, fast), func(t *testing.T) {
				var mu sync.Mutex
				var whole []string // requests the backend read completely
				be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					b, err := io.ReadAll(r.Body)
					if err == nil {
						mu.Lock()
						whole = append(whole, r.Method+" "+r.URL.Path+" "+string(b))
						mu.Unlock()
					}
					io.WriteString(w, "ok")
				}))
				defer be.Close()
				front := frontFor(t, proxyTo(t, be.URL, fast))
				c, err := net.Dial("tcp", front.Listener.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(3 * time.Second))
				io.WriteString(c, tc.raw)
				br := bufio.NewReader(c)
				var codes []int
				for {
					res, err := http.ReadResponse(br, nil)
					if err != nil {
						break
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					codes = append(codes, res.StatusCode)
				}
				mu.Lock()
				defer mu.Unlock()
				if len(codes) == 0 {
					t.Fatal("no answer at all")
				}
				if tc.refused {
					if codes[0] < 400 || len(whole) != 0 {
						t.Errorf("client got %v, backend saw %q: want the server to refuse it and nothing proxied", codes, whole)
					}
					return
				}
				if n := strings.Count(fmt.Sprint(codes), "200"); n != len(whole) || (n > 0 && whole[n-1] != "GET /end ") {
					t.Errorf("backend read %q whole, the client got %v: out of step", whole, codes)
				}
			})
		}
	}
}

// TestHalfClosedClientGetsNoEmptyOK: net/http cancels a request whose
// client half-closed its connection after sending; the client, which may
// still read, must not get the server's implicit empty 200 for a request
// that was never answered.
func TestHalfClosedClientGetsNoEmptyOK(t *testing.T) {
	for _, fast := range []bool{true, false} {
		be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done() // answers only when the proxy gave up
		}))
		front := frontFor(t, proxyTo(t, be.URL, fast))
		c, err := net.Dial("tcp", front.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		c.(*net.TCPConn).CloseWrite()
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("fast=%v: %v", fast, err)
		}
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusBadGateway || !res.Close {
			t.Errorf("fast=%v: %d %q, want 502 with Connection: close", fast, res.StatusCode, b)
		}
		c.Close()
		be.Close()
	}
}

// TestFastPathFallbackAfterAPartialWrite: a bad header after a request
// line longer than the write buffer (so part of the request was flushed)
// does not leave a half-written request on a pooled connection.
func TestFastPathFallbackAfterAPartialWrite(t *testing.T) {
	sb := newScriptBackend(t, map[string]scriptAnswer{"/": {raw: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"}})
	p := proxyTo(t, "http://"+sb.ln.Addr().String(), true)
	long := "/" + strings.Repeat("x", 8<<10)
	r := httptest.NewRequest("GET", "http://app.example.com"+long, nil)
	r.Header = http.Header{"X-Bad": {"a\nb"}}
	w := httptest.NewRecorder()
	p.ServeHTTP(w, r) // the standard path refuses the header: 502
	if w.Code != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", w.Code)
	}
	for range 3 {
		w := httptest.NewRecorder()
		p.ServeHTTP(w, httptest.NewRequest("GET", "http://app.example.com/", nil))
		if w.Code != http.StatusOK || w.Body.String() != "ok" {
			t.Fatalf("next request: %d %q", w.Code, w.Body.String())
		}
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	for _, seen := range sb.seen {
		if strings.Contains(seen, long[:1024]) {
			t.Errorf("the backend got part of the refused request: %.80q...", seen)
		}
	}
}
