package proxy

// Benchmarks of the request path, with allocation counts, so regressions
// show in review. Run them with
//
//	go test -run '^$' -bench . -benchmem ./proxy/
//
// The backends here are rawBackend: a canned HTTP/1.1 answer written by a
// loop that allocates nothing per request, so allocs/op is the proxy's own
// (handler, httputil.ReverseProxy, http.Transport, and for the "e2e"
// benchmarks also net/http's server side).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const smallBody = "Hello, World\n" // 13 bytes, as in make bench

// rawBackend is a minimal HTTP/1.1 origin: it reads header blocks, drops
// the body a Content-Length announces, and answers each request with the
// same canned response.
type rawBackend struct {
	ln    net.Listener
	resp  []byte
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func newRawBackend(tb testing.TB, body string) *rawBackend {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	rb := &rawBackend{ln: ln, conns: map[net.Conn]struct{}{}}
	rb.resp = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	rb.wg.Go(rb.accept)
	tb.Cleanup(rb.close)
	return rb
}

func (rb *rawBackend) url() *url.URL { return &url.URL{Scheme: "http", Host: rb.ln.Addr().String()} }

func (rb *rawBackend) accept() {
	for {
		c, err := rb.ln.Accept()
		if err != nil {
			return
		}
		rb.mu.Lock()
		rb.conns[c] = struct{}{}
		rb.mu.Unlock()
		rb.wg.Go(func() { rb.serve(c) })
	}
}

func (rb *rawBackend) serve(c net.Conn) {
	defer func() {
		rb.mu.Lock()
		delete(rb.conns, c)
		rb.mu.Unlock()
		c.Close()
	}()
	br := bufio.NewReader(c)
	for {
		var n int
		for { // one header block, up to the empty line
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) <= 2 {
				break
			}
			if len(line) > 16 && bytes.EqualFold(line[:16], []byte("Content-Length: ")) {
				for _, c := range line[16:] {
					if c >= '0' && c <= '9' {
						n = n*10 + int(c-'0')
					}
				}
			}
		}
		if _, err := br.Discard(n); err != nil {
			return
		}
		if _, err := c.Write(rb.resp); err != nil {
			return
		}
	}
}

func (rb *rawBackend) close() {
	rb.ln.Close()
	rb.mu.Lock()
	for c := range rb.conns {
		c.Close()
	}
	rb.mu.Unlock()
	rb.wg.Wait()
}

// benchWriter is a ResponseWriter that keeps its header map between
// requests (as net/http's server does not, but the point here is to count
// the proxy's allocations, not the harness's).
type benchWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *benchWriter) Header() http.Header { return w.h }
func (w *benchWriter) WriteHeader(code int) {
	w.status = code
}
func (w *benchWriter) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }

func (w *benchWriter) reset() {
	clear(w.h)
	w.status, w.n = 0, 0
}

type nopObserver struct{}

func (nopObserver) RequestStarted()       {}
func (nopObserver) RequestDone(int, bool) {}

// benchProxy is a Proxy in front of a rawBackend, configured as a node
// configures it (fencing header, observer, metrics callback).
func benchProxy(b *testing.B, backend *url.URL, mut func(*Options)) (*Proxy, *fakeFence) {
	b.Helper()
	f := &fakeFence{}
	f.term.Store(7)
	f.ok.Store(true)
	o := Options{Backend: backend, FencingHeader: "Baton-Term", Fence: f, Observer: nopObserver{},
		RetryAfter: 6 * time.Second, NodeName: "bench"}
	if mut != nil {
		mut(&o)
	}
	p, err := New(o, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	return p, f
}

// histogramObserver is what the node's OnDuration does: one Prometheus
// histogram observation per request.
func histogramObserver() func(Path, time.Duration) {
	var hs [numPaths]prometheus.Histogram
	for i := range hs {
		hs[i] = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "d", Buckets: prometheus.DefBuckets})
	}
	return func(p Path, d time.Duration) { hs[p].Observe(d.Seconds()) }
}

func newBenchRequest(target string) *http.Request {
	r := httptest.NewRequest("GET", target, nil)
	r.Host = "app.example.com"
	r.RemoteAddr = "192.0.2.10:41000"
	r.Header.Set("User-Agent", "bench/1")
	r.Header.Set("Accept", "*/*")
	return r
}

// serveLoop serves a GET of /small through p b.N times, checking the status
// and, unless wantLen < 0, the body length of every answer.
func serveLoop(b *testing.B, p *Proxy, wantStatus, wantLen int) {
	b.Helper()
	req := newBenchRequest("http://app.example.com/small")
	w := &benchWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		p.ServeHTTP(w, req)
		if w.status != wantStatus || (wantLen >= 0 && w.n != wantLen) {
			b.Fatalf("status %d, %d bytes", w.status, w.n)
		}
	}
}

// BenchmarkServeLocal is Proxy.ServeHTTP for a request served by the local
// backend (fence on), called directly: the handler, the ReverseProxy and the
// Transport's round trip over loopback, without net/http's server side.
func BenchmarkServeLocal(b *testing.B) {
	for _, tc := range []struct {
		name string
		mut  func(*Options)
		al   bool
	}{
		{name: "bare", mut: func(o *Options) { o.Observer = nil; o.FencingHeader = "" }},
		{name: "node"}, // fencing header + observer, no metrics
		{name: "node+metrics", mut: func(o *Options) { o.OnDuration = histogramObserver() }},
		{name: "node+metrics+accesslog", mut: func(o *Options) { o.OnDuration = histogramObserver() }, al: true},
		// The same through httputil.ReverseProxy and http.Transport.
		{name: "node+metrics/transport", mut: func(o *Options) { o.OnDuration = histogramObserver(); o.NoFastPath = true }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			be := newRawBackend(b, smallBody)
			p, _ := benchProxy(b, be.url(), tc.mut)
			if tc.al {
				p.SetAccessLog(zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
					zapcore.AddSync(io.Discard), zap.InfoLevel)))
			}
			serveLoop(b, p, http.StatusOK, len(smallBody))
		})
	}
}

// benchBody is a request body the benchmarks rewind instead of
// allocating one per request.
type benchBody struct{ bytes.Reader }

func (*benchBody) Close() error { return nil }

// BenchmarkServeLocalPost is BenchmarkServeLocal for a POST with a 1 KiB
// body: streamed, read first (limits.buffer_body, as a node does by
// default), and through httputil.ReverseProxy.
func BenchmarkServeLocalPost(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 1<<10)
	for _, tc := range []struct {
		name string
		mut  func(*Options)
	}{
		{name: "1KiB"},
		{name: "1KiB+buffered", mut: func(o *Options) { o.BufferBody = 64 << 10 }},
		{name: "1KiB/transport", mut: func(o *Options) { o.NoFastPath = true }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			be := newRawBackend(b, smallBody)
			p, _ := benchProxy(b, be.url(), tc.mut)
			req := newBenchRequest("http://app.example.com/small")
			req.Method = "POST"
			req.ContentLength = int64(len(payload))
			body := &benchBody{}
			w := &benchWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				w.reset()
				body.Reset(payload)
				req.Body = body
				p.ServeHTTP(w, req)
				if w.status != http.StatusOK || w.n != len(smallBody) {
					b.Fatalf("status %d, %d bytes", w.status, w.n)
				}
			}
		})
	}
}

// BenchmarkE2E is a whole request through a net/http server running the
// Proxy, over keep-alive loopback connections from a raw client: what one
// proxied request costs the process (server, handler, transport).
func BenchmarkE2E(b *testing.B) {
	for _, tc := range []struct {
		name string
		body string
		mut  func(*Options)
	}{
		{name: "13B", body: smallBody},
		{name: "13B+metrics", body: smallBody, mut: func(o *Options) { o.OnDuration = histogramObserver() }},
		{name: "64KiB", body: string(bytes.Repeat([]byte("x"), 64<<10))},
		{name: "13B/transport", body: smallBody, mut: func(o *Options) { o.NoFastPath = true }},
		{name: "64KiB/transport", body: string(bytes.Repeat([]byte("x"), 64<<10)), mut: func(o *Options) { o.NoFastPath = true }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			be := newRawBackend(b, tc.body)
			p, _ := benchProxy(b, be.url(), tc.mut)
			front := httptest.NewUnstartedServer(p)
			front.Config = NewServer(p, zap.NewNop())
			front.Start()
			b.Cleanup(front.Close)
			benchClient(b, front.Listener.Addr().String(), len(tc.body))
		})
	}
}

// BenchmarkE2EHTTP2 is a whole request from an HTTP/2 client over TLS (one
// connection, parallel streams), through the fast path and through
// httputil.ReverseProxy: what browsers on HTTPS get. The Go client's own
// cost is in the figures too, so only the ratio of the two says what the
// fast path saves.
func BenchmarkE2EHTTP2(b *testing.B) {
	for _, tc := range []struct {
		name string
		mut  func(*Options)
	}{
		{name: "13B"},
		{name: "13B/transport", mut: func(o *Options) { o.NoFastPath = true }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			be := newRawBackend(b, smallBody)
			p, _ := benchProxy(b, be.url(), tc.mut)
			front, _ := h2Front(b, p)
			c := h2Client()
			defer c.CloseIdleConnections()
			b.ReportAllocs()
			b.SetBytes(int64(len(smallBody)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := c.Get(front.URL + "/small")
					if err != nil {
						b.Error(err)
						return
					}
					n, _ := io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK || res.ProtoMajor != 2 || int(n) != len(smallBody) {
						b.Errorf("%s: status %d, %d bytes", res.Proto, res.StatusCode, n)
						return
					}
				}
			})
		})
	}
}

// BenchmarkE2EPost is BenchmarkE2E for POST requests with a body, with
// the node's default limits.buffer_body (64 KiB: both are read first).
func BenchmarkE2EPost(b *testing.B) {
	for _, tc := range []struct {
		name string
		size int
		mut  func(*Options)
	}{
		{name: "1KiB", size: 1 << 10},
		{name: "64KiB", size: 64 << 10},
		{name: "1KiB/transport", size: 1 << 10, mut: func(o *Options) { o.NoFastPath = true }},
		{name: "64KiB/transport", size: 64 << 10, mut: func(o *Options) { o.NoFastPath = true }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			be := newRawBackend(b, smallBody)
			p, _ := benchProxy(b, be.url(), func(o *Options) {
				o.BufferBody = 64 << 10
				if tc.mut != nil {
					tc.mut(o)
				}
			})
			front := httptest.NewUnstartedServer(p)
			front.Config = NewServer(p, zap.NewNop())
			front.Start()
			b.Cleanup(front.Close)
			req := append([]byte("POST /small HTTP/1.1\r\nHost: app.example.com\r\nUser-Agent: bench/1\r\nAccept: */*\r\n"+
				"Content-Type: application/octet-stream\r\nContent-Length: "+strconv.Itoa(tc.size)+"\r\n\r\n"), bytes.Repeat([]byte("x"), tc.size)...)
			benchClientReq(b, front.Listener.Addr().String(), req, len(smallBody))
		})
	}
}

// benchClient sends b.N GET requests over one keep-alive connection per
// parallel goroutine and checks each answer's status and length.
func benchClient(b *testing.B, addr string, bodyLen int) {
	b.Helper()
	benchClientReq(b, addr, []byte("GET /small HTTP/1.1\r\nHost: app.example.com\r\nUser-Agent: bench/1\r\nAccept: */*\r\n\r\n"), bodyLen)
}

// benchClientReq is benchClient for any request.
func benchClientReq(b *testing.B, addr string, reqBytes []byte, bodyLen int) {
	b.Helper()
	b.ReportAllocs()
	b.SetBytes(int64(bodyLen))
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		br := bufio.NewReaderSize(c, 64<<10)
		for pb.Next() {
			if _, err := c.Write(reqBytes); err != nil {
				b.Error(err)
				return
			}
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				b.Error(err)
				return
			}
			n, _ := io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || int(n) != bodyLen {
				b.Errorf("status %d, %d bytes", res.StatusCode, n)
				return
			}
		}
	})
}

// BenchmarkRewrite is the outbound request rewrite alone (SetURL,
// X-Forwarded-*, Host), on a request whose header map is reused.
func BenchmarkRewrite(b *testing.B) {
	for _, tc := range []struct {
		name      string
		forwarded bool
	}{{"client", false}, {"from-peer", true}} {
		b.Run(tc.name, func(b *testing.B) {
			u, _ := url.Parse("http://127.0.0.1:8080")
			p, _ := benchProxy(b, u, nil)
			in := newBenchRequest("http://app.example.com/small?q=1")
			in.Header.Set("X-Forwarded-For", "198.51.100.1")
			if tc.forwarded {
				in.Header.Set(ForwardedHeader, "peer")
			}
			out := in.Clone(in.Context())
			outURL := new(url.URL)
			b.ReportAllocs()
			for b.Loop() {
				clear(out.Header)
				for k, v := range in.Header {
					out.Header[k] = v
				}
				// As httputil.ReverseProxy does before calling Rewrite.
				for _, k := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
					delete(out.Header, k)
				}
				*outURL = *in.URL
				out.URL = outURL
				p.rp.Rewrite(&httputil.ProxyRequest{In: in, Out: out})
			}
			if out.Header.Get("X-Forwarded-For") == "" || out.Host != "app.example.com" {
				b.Fatalf("rewrite did not happen: %v %q", out.Header, out.Host)
			}
		})
	}
}

// BenchmarkStandby is the path of a node that may not serve locally.
func BenchmarkStandby(b *testing.B) {
	// reject: fence off, mode reject: the 503 answer.
	b.Run("reject", func(b *testing.B) {
		u, _ := url.Parse("http://127.0.0.1:1")
		p, f := benchProxy(b, u, func(o *Options) { o.Standby = StandbyReject })
		f.ok.Store(false)
		serveLoop(b, p, http.StatusServiceUnavailable, -1)
	})
	// decision: fence off, an active node known: waitForActive alone.
	b.Run("decision", func(b *testing.B) {
		u, _ := url.Parse("http://127.0.0.1:1")
		l := newFakeLeader()
		l.set("http://127.0.0.1:2")
		p, f := benchProxy(b, u, func(o *Options) { o.Standby = StandbyForward; o.Leader = l; o.Hold = time.Second })
		f.ok.Store(false)
		req := newBenchRequest("http://app.example.com/small")
		b.ReportAllocs()
		for b.Loop() {
			if t, local := p.fwd.waitForActive(req.Context(), p.opts.Fence); t == nil || local {
				b.Fatal("no target")
			}
		}
	})
	// forward: fence off, the whole forward to the active node (a raw
	// backend standing in for it).
	b.Run("forward", func(b *testing.B) {
		u, _ := url.Parse("http://127.0.0.1:1")
		active := newRawBackend(b, smallBody)
		l := newFakeLeader()
		l.set(active.url().String())
		p, f := benchProxy(b, u, func(o *Options) { o.Standby = StandbyForward; o.Leader = l; o.Hold = time.Second })
		f.ok.Store(false)
		serveLoop(b, p, http.StatusOK, len(smallBody))
	})
}

// BenchmarkAccounting is what the request path spends on bookkeeping, piece
// by piece, without I/O: the in-flight and status counters every request
// pays, the duration histogram behind baton_request_duration_seconds (the
// node's OnDuration), and one access log line (JSON, to io.Discard; the
// file write is extra). The fencing check itself is lease's BenchmarkFence.
func BenchmarkAccounting(b *testing.B) {
	u, _ := url.Parse("http://127.0.0.1:1")
	b.Run("counters", func(b *testing.B) {
		p, _ := benchProxy(b, u, nil)
		b.ReportAllocs()
		for b.Loop() {
			p.begin()
			p.served.Add(1)
			p.count(PathLocal, http.StatusOK)
			p.end()
		}
	})
	b.Run("fence-header", func(b *testing.B) {
		p, _ := benchProxy(b, u, nil)
		h := http.Header{}
		b.ReportAllocs()
		for b.Loop() {
			h[p.fenceKey] = p.termHeader(7)
		}
	})
	b.Run("histogram", func(b *testing.B) {
		obs := histogramObserver()
		p, _ := benchProxy(b, u, func(o *Options) { o.OnDuration = obs })
		b.ReportAllocs()
		for b.Loop() {
			p.opts.OnDuration(PathLocal, time.Since(time.Now()))
		}
	})
	// record: the one accounting call at the end of a request (counters,
	// status counts, the histogram), on a pooled exchange; then with an
	// access log line (JSON, to io.Discard).
	b.Run("record", func(b *testing.B) {
		p, _ := benchProxy(b, u, func(o *Options) { o.OnDuration = histogramObserver() })
		benchRecord(b, p)
	})
	b.Run("accesslog-line", func(b *testing.B) {
		p, _ := benchProxy(b, u, nil)
		p.SetAccessLog(zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
			zapcore.AddSync(io.Discard), zap.InfoLevel)))
		benchRecord(b, p)
	})
}

// benchRecord records one local 200 per iteration.
func benchRecord(b *testing.B, p *Proxy) {
	req := newBenchRequest("http://app.example.com/small")
	w := &benchWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		ex := newExchange(w)
		ex.route, ex.path, ex.status, ex.bytes = PathLocal, PathLocal, 200, 13
		p.record(ex, req)
	}
}

// The request-path shortcuts the benchmarks above measure must not change
// behaviour: these tests pin them to what they replace.

// setXForwarded must do what httputil.ProxyRequest.SetXForwarded does.
func TestSetXForwardedMatchesStdlib(t *testing.T) {
	for _, tc := range []struct {
		name, remote, host string
		prior              []string // X-Forwarded-For already on Out
		tls                bool
	}{
		{name: "plain", remote: "192.0.2.1:1234", host: "app.example.com"},
		{name: "tls", remote: "192.0.2.1:1234", host: "app.example.com", tls: true},
		{name: "ipv6", remote: "[2001:db8::1]:443", host: "[2001:db8::2]:8443"},
		{name: "chain", remote: "10.0.0.2:5555", host: "h", prior: []string{"198.51.100.7", "203.0.113.9, 10.0.0.9"}},
		{name: "bad remote", remote: "not-an-address", host: "h", prior: []string{"198.51.100.7"}},
		{name: "empty host", remote: "192.0.2.1:1", host: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mk := func() *httputil.ProxyRequest {
				in := httptest.NewRequest("GET", "http://x/", nil)
				in.RemoteAddr, in.Host = tc.remote, tc.host
				if !tc.tls {
					in.TLS = nil
				} else if in.TLS == nil {
					in.TLS = new(tls.ConnectionState)
				}
				out := in.Clone(in.Context())
				out.Header = http.Header{"Accept": {"*/*"}}
				if tc.prior != nil {
					out.Header["X-Forwarded-For"] = slices.Clone(tc.prior)
				}
				return &httputil.ProxyRequest{In: in, Out: out}
			}
			want, got := mk(), mk()
			want.SetXForwarded()
			setXForwarded(got)
			if !reflect.DeepEqual(got.Out.Header, want.Out.Header) {
				t.Errorf("headers\n got  %v\n want %v", got.Out.Header, want.Out.Header)
			}
			// The values share one array: appending to one must not
			// overwrite another.
			for k, v := range got.Out.Header {
				if cap(v) != len(v) && k != "Accept" {
					t.Errorf("%s has spare capacity %d > %d", k, cap(v), len(v))
				}
			}
		})
	}
}

func TestTermHeaderFollowsTheTerm(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:1")
	p, err := New(Options{Backend: u, Fence: &fakeFence{}, FencingHeader: "Baton-Term"}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, term := range []uint64{1, 1, 2, 7, 2, 18446744073709551615} {
		if got := p.termHeader(term); len(got) != 1 || cap(got) != 1 || got[0] != strconv.FormatUint(term, 10) {
			t.Fatalf("termHeader(%d) = %q (cap %d)", term, got, cap(got))
		}
	}
}

// WaitIdle must never miss the moment the last request ends, whatever the
// interleaving with begin/end (run with -race).
func TestWaitIdleNeverMissesTheEnd(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:1")
	p, err := New(Options{Backend: u, Fence: &fakeFence{}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for i := range 2000 {
		n := 1 + i%3
		for range n {
			p.begin()
		}
		var wg sync.WaitGroup
		for range n {
			wg.Go(p.end)
		}
		if left := p.WaitIdle(ctx); left != 0 {
			t.Fatalf("round %d: WaitIdle gave up with %d in flight", i, left)
		}
		wg.Wait()
	}
}
