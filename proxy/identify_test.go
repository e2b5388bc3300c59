package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// identifyGet sends method to u and returns the status and the identify
// header ("Baton-Node") of the answer, and whether it was there at all.
func identifyGet(t *testing.T, method, u string) (int, string, bool) {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader("payload") // a body: the standard path
	}
	req, _ := http.NewRequest(method, u, body)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	v, ok := res.Header["Baton-Node"]
	if len(v) > 1 {
		t.Errorf("%s %s: %d Baton-Node headers %q, want one", method, u, len(v), v)
	}
	return res.StatusCode, res.Header.Get("Baton-Node"), ok
}

// TestIdentifyHeader: the identify header names the node and the term on
// answers served locally, on the fast path and through
// httputil.ReverseProxy, replaces one the backend sent, follows the term,
// and is absent when off.
func TestIdentifyHeader(t *testing.T) {
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Baton-Node", "forged-by-the-app")
		io.WriteString(w, "hello")
	})
	for _, tc := range []struct {
		name     string
		identify string
		noFast   bool
		method   string
		fast     bool // the request takes the fast path
	}{
		{name: "fast path", identify: "Baton-Node", method: http.MethodGet, fast: true},
		{name: "standard path (body)", identify: "Baton-Node", method: http.MethodPost},
		{name: "standard path (fast_path off)", identify: "Baton-Node", noFast: true, method: http.MethodGet},
		{name: "lower-case name", identify: "baton-node", method: http.MethodGet, fast: true},
		{name: "off, fast path", method: http.MethodGet, fast: true},
		{name: "off, standard path", method: http.MethodPost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, f, front, _ := newTestProxy(t, backend, func(o *Options) {
				o.IdentifyHeader, o.NodeName, o.NoFastPath = tc.identify, "node-a", tc.noFast
			})
			req, _ := http.NewRequest(tc.method, front.URL+"/x", nil)
			if tc.method == http.MethodPost {
				req.ContentLength = 7
			}
			if got := p.fast != nil && fastEligible(req); got != tc.fast {
				t.Fatalf("fast path taken: %v, want %v", got, tc.fast)
			}
			code, v, ok := identifyGet(t, tc.method, front.URL+"/x")
			if code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			if tc.identify == "" {
				if v != "forged-by-the-app" {
					t.Errorf("header off: Baton-Node %q (present %v), want the backend's own value passed on untouched", v, ok)
				}
				return
			}
			if v != "node-a; term=7" {
				t.Errorf("Baton-Node %q, want %q", v, "node-a; term=7")
			}
			f.term.Store(8) // a new term: a new value
			if _, v, _ := identifyGet(t, tc.method, front.URL+"/x"); v != "node-a; term=8" {
				t.Errorf("after the term changed: Baton-Node %q, want %q", v, "node-a; term=8")
			}
		})
	}
}

// TestIdentifyHeaderOffAddsNothing: with the header off, an answer carries
// exactly the backend's headers, on both paths.
func TestIdentifyHeaderOffAddsNothing(t *testing.T) {
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	for _, noFast := range []bool{false, true} {
		_, _, front, _ := newTestProxy(t, backend, func(o *Options) { o.NodeName, o.NoFastPath = "node-a", noFast })
		res, err := http.Get(front.URL)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		for k, v := range res.Header {
			if strings.Contains(strings.Join(v, ","), "node-a") || k == "Baton-Node" {
				t.Errorf("NoFastPath %v: header %s: %q names the node although identify_header is off", noFast, k, v)
			}
		}
	}
}

// TestIdentifyHeaderOnLocalErrors: a 502 of the node for a local request
// (its backend refused) names the node too: it was this node that failed.
func TestIdentifyHeaderOnLocalErrors(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	u, _ := url.Parse("http://" + addr)
	f := &fakeFence{}
	f.term.Store(3)
	f.ok.Store(true)
	p, err := New(Options{Backend: u, Fence: f, NodeName: "node-a", IdentifyHeader: "Baton-Node"}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	front := httptest.NewServer(p)
	defer front.Close()
	if code, v, _ := identifyGet(t, http.MethodGet, front.URL); code != http.StatusBadGateway || v != "node-a; term=3" {
		t.Errorf("status %d Baton-Node %q, want 502 from node-a; term=3", code, v)
	}
	// Not active: the node's own 503 serves nothing locally and names nobody.
	f.ok.Store(false)
	if code, v, ok := identifyGet(t, http.MethodGet, front.URL); code != http.StatusServiceUnavailable || ok {
		t.Errorf("not active: status %d Baton-Node %q, want 503 without the header", code, v)
	}
}

// TestIdentifyHeaderForwarded: a standby forwarding to the active passes
// on the active's header and adds none of its own.
func TestIdentifyHeaderForwarded(t *testing.T) {
	_, fa, frontA, _ := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "a") }),
		func(o *Options) { o.NodeName, o.IdentifyHeader = "node-a", "Baton-Node" })
	fa.term.Store(9)
	leader := newFakeLeader()
	leader.set(frontA.URL)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the standby's own backend was asked")
	}))
	defer be.Close()
	u, _ := url.Parse(be.URL)
	b, err := New(Options{Backend: u, Fence: &fakeFence{}, Standby: StandbyForward, Hold: time.Second, Leader: leader,
		NodeName: "node-b", IdentifyHeader: "Baton-Node"}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	frontB := httptest.NewServer(b)
	defer frontB.Close()
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		if code, v, _ := identifyGet(t, m, frontB.URL); code != http.StatusOK || v != "node-a; term=9" {
			t.Errorf("%s through the standby: status %d Baton-Node %q, want 200 from node-a; term=9", m, code, v)
		}
	}
}

func TestParseIdentify(t *testing.T) {
	for _, tc := range []struct {
		v    string
		node string
		term uint64
		ok   bool
	}{
		{IdentifyValue("node-a", 7), "node-a", 7, true},
		{" vm-2.example; term=18446744073709551615 ", "vm-2.example", 1<<64 - 1, true},
		{"node-a", "", 0, false},
		{"; term=3", "", 0, false},
		{"node-a; term=x", "", 0, false},
		{"node-a;term=3", "", 0, false},
	} {
		node, term, ok := ParseIdentify(tc.v)
		if node != tc.node || term != tc.term || ok != tc.ok {
			t.Errorf("ParseIdentify(%q) = %q %d %v, want %q %d %v", tc.v, node, term, ok, tc.node, tc.term, tc.ok)
		}
	}
}

// TestIdentifyHeaderAllocations: with the header off, serving a local
// request allocates exactly what it did before the header existed (12 on
// the fast path, see BenchmarkServeLocal); on, nothing more either (the
// value is built once per term). Skipped under -race, whose sync.Pool
// drops items at random.
func TestIdentifyHeaderAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not stable under -race")
	}
	be := newRawBackend(t, smallBody)
	allocs := func(identify string, noFast bool) float64 {
		f := &fakeFence{}
		f.term.Store(7)
		f.ok.Store(true)
		p, err := New(Options{Backend: be.url(), FencingHeader: "Baton-Term", Fence: f, Observer: nopObserver{},
			RetryAfter: 6 * time.Second, NodeName: "bench", IdentifyHeader: identify, NoFastPath: noFast}, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		req := newBenchRequest("http://app.example.com/small")
		w := &benchWriter{h: http.Header{}}
		serve := func() {
			w.reset()
			p.ServeHTTP(w, req)
			if w.status != http.StatusOK {
				t.Fatalf("status %d", w.status)
			}
			if got := w.h.Get("Baton-Node"); (identify != "") != (got == "bench; term=7") {
				t.Fatalf("identify %q: Baton-Node %q", identify, got)
			}
		}
		for range 50 {
			serve() // warm the pools and the connection
		}
		return testing.AllocsPerRun(500, serve)
	}
	for _, noFast := range []bool{false, true} {
		off, on := allocs("", noFast), allocs("Baton-Node", noFast)
		t.Logf("NoFastPath %v: %.0f allocations per request with the header off, %.0f on", noFast, off, on)
		if !noFast && off > 12 {
			t.Errorf("fast path with the header off: %.0f allocations per request, want at most 12 (as before it existed)", off)
		}
		if on > off {
			t.Errorf("NoFastPath %v: %.0f allocations per request with the header on, %.0f off: want no more", noFast, on, off)
		}
	}
}

// BenchmarkServeLocalIdentify is BenchmarkServeLocal's "node" case with the
// identify header on, on both paths; compare with BenchmarkServeLocal/node
// and node+metrics/transport (the header off).
func BenchmarkServeLocalIdentify(b *testing.B) {
	for _, tc := range []struct {
		name   string
		noFast bool
	}{{"on", false}, {"on/transport", true}} {
		b.Run(tc.name, func(b *testing.B) {
			be := newRawBackend(b, smallBody)
			p, _ := benchProxy(b, be.url(), func(o *Options) { o.IdentifyHeader, o.NoFastPath = "Baton-Node", tc.noFast })
			serveLoop(b, p, http.StatusOK, len(smallBody))
		})
	}
}
