package proxy

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

// pathObserver records what RequestDonePath is told. It fails the test if
// RequestDone is called: a PathObserver hears of a request once, with its
// path.
type pathObserver struct {
	t       *testing.T
	mu      sync.Mutex
	started int
	done    []pathDone
}

type pathDone struct {
	path     string
	status   int
	proxyErr bool
}

func (o *pathObserver) RequestStarted() { o.mu.Lock(); o.started++; o.mu.Unlock() }
func (o *pathObserver) RequestDone(status int, proxyErr bool) {
	o.t.Errorf("RequestDone(%d, %v) called on a PathObserver", status, proxyErr)
}
func (o *pathObserver) RequestDonePath(path string, status int, proxyErr bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.done = append(o.done, pathDone{path, status, proxyErr})
}

func (o *pathObserver) take() (int, []pathDone) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n, d := o.started, o.done
	o.started, o.done = 0, nil
	return n, d
}

// TestPathObserverGetsTheInboundPath: whichever way a request takes to the
// backend (fast path, httputil.ReverseProxy, a backend.url with a path of
// its own) and however it ends (an answer, a backend failure), the
// observer is told the path the client asked for.
func TestPathObserverGetsTheInboundPath(t *testing.T) {
	for _, tc := range []struct {
		name     string
		base     string // backend.url's path
		noFast   bool
		wantBack string // the path the backend sees for /checkout/a%20b
	}{
		{name: "fast path", wantBack: "/checkout/a b"},
		{name: "transport", noFast: true, wantBack: "/checkout/a b"},
		{name: "base path", base: "/app", wantBack: "/app/checkout/a b"},
		{name: "base path with slash", base: "/app/", wantBack: "/app/checkout/a b"},
		{name: "root base path", base: "/", wantBack: "/checkout/a b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := &pathObserver{t: t}
			backendSaw := make(chan string, 4)
			_, _, front, _ := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				backendSaw <- r.URL.Path
				if strings.HasSuffix(r.URL.Path, "/fail") {
					w.WriteHeader(http.StatusBadGateway)
				}
			}), func(o *Options) {
				u := *o.Backend
				u.Path = tc.base
				o.Backend, o.Observer, o.NoFastPath = &u, obs, tc.noFast
			})
			for _, req := range []struct{ method, target string }{
				{"GET", "/checkout/a%20b?q=1"},
				{"POST", "/checkout/a%20b"}, // never on the fast path
				{"GET", "/checkout/fail"},
			} {
				var body io.Reader
				if req.method == "POST" {
					body = strings.NewReader("x")
				}
				r, _ := http.NewRequest(req.method, front.URL+req.target, body)
				res, err := http.DefaultClient.Do(r)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
			for i := range 2 {
				if got := <-backendSaw; got != tc.wantBack {
					t.Errorf("request %d: backend saw %q, want %q", i, got, tc.wantBack)
				}
			}
			<-backendSaw
			n, done := obs.take()
			want := []pathDone{{"/checkout/a b", 200, false}, {"/checkout/a b", 200, false}, {"/checkout/fail", 502, false}}
			if n != 3 || len(done) != 3 || done[0] != want[0] || done[1] != want[1] || done[2] != want[2] {
				t.Errorf("observer: %d started, %+v; want 3, %+v", n, done, want)
			}
		})
	}
}

func TestPathObserverOnBackendFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: every dial is refused
	for _, tc := range []struct {
		name string
		base string
	}{{"fast path", ""}, {"base path", "/app/"}} {
		t.Run(tc.name, func(t *testing.T) {
			obs := &pathObserver{t: t}
			_, _, front, _ := newTestProxy(t, http.NotFoundHandler(), func(o *Options) {
				o.Backend = &url.URL{Scheme: "http", Host: addr, Path: tc.base}
				o.Observer = obs
			})
			res, err := http.Get(front.URL + "/checkout/pay")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusBadGateway {
				t.Fatalf("status %d, want 502", res.StatusCode)
			}
			if n, done := obs.take(); n != 1 || len(done) != 1 || done[0] != (pathDone{"/checkout/pay", 502, true}) {
				t.Errorf("observer: %d started, %+v", n, done)
			}
		})
	}
}

type nopPathObserver struct{ nopObserver }

func (nopPathObserver) RequestDonePath(string, int, bool) {}

// BenchmarkServeLocalPathObserver is BenchmarkServeLocal/node with an
// Observer that takes the request's path: the same allocations.
func BenchmarkServeLocalPathObserver(b *testing.B) {
	for _, tc := range []struct {
		name string
		mut  func(*Options)
	}{
		{name: "node", mut: func(o *Options) { o.Observer = nopPathObserver{} }},
		{name: "node/transport", mut: func(o *Options) { o.Observer = nopPathObserver{}; o.NoFastPath = true }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			be := newRawBackend(b, smallBody)
			p, _ := benchProxy(b, be.url(), tc.mut)
			serveLoop(b, p, http.StatusOK, len(smallBody))
		})
	}
}

func TestObserveDoneDoesNotAllocate(t *testing.T) {
	be, _ := url.Parse("http://127.0.0.1:1/app/")
	p, err := New(Options{Backend: be, Fence: &fakeFence{}, Observer: nopPathObserver{}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	out := httptest.NewRequest("GET", "http://127.0.0.1:1/app/checkout/pay", nil)
	if allocs := testing.AllocsPerRun(1000, func() { p.observeDone(out, 200, false) }); allocs != 0 {
		t.Fatalf("%v allocations", allocs)
	}
}

// TestGoneWhileDialingEndsTheRequest: a client that goes away while the
// fast path dials the backend was counted by the Observer as started, so
// it must be counted as done (499, not a backend error). Before, it stayed
// in flight for good: a storm of such cancellations (a rapid-reset loop)
// left the passive overload signal counting requests that no longer
// existed.
func TestGoneWhileDialingEndsTheRequest(t *testing.T) {
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	p, _, _, obs := newTestProxy(t, backend, nil)
	dialed, release := make(chan struct{}), make(chan struct{})
	dial := p.fast.dial
	p.fast.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		close(dialed)
		<-release
		return c, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := httptest.NewRecorder()
	served := make(chan struct{})
	go func() {
		defer close(served)
		p.ServeHTTP(w, httptest.NewRequest("GET", "http://app.example.com/x", nil).WithContext(ctx))
	}()
	<-dialed
	cancel()
	close(release)
	<-served
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.started != 1 || len(obs.done) != 1 || obs.done[0] != StatusClientClosedRequest || obs.errs != 0 {
		t.Errorf("observer: started=%d done=%v errs=%d; want 1 started, done [499], no backend error", obs.started, obs.done, obs.errs)
	}
}

// TestObserverBalancedUnderCancels cancels requests at random moments
// (while waiting for a slot, dialing, sending the body, waiting for the
// answer, reading it) on both paths and checks the Observer's contract:
// every RequestStarted gets exactly one RequestDone, and none of those the
// clients caused counts against the backend.
func TestObserverBalancedUnderCancels(t *testing.T) {
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	t.Logf("seed %d", seed)
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if d := r.URL.Query().Get("d"); d != "" {
			us, _ := strconv.Atoi(d)
			time.Sleep(time.Duration(us) * time.Microsecond)
		}
		io.WriteString(w, strings.Repeat("x", 20000))
	})
	for _, fast := range []bool{true, false} {
		p, _, _, obs := newTestProxy(t, backend, func(o *Options) { o.MaxBackendConns = 4; o.BackendQueueTimeout = time.Second })
		if !fast {
			p.fast = nil
		}
		var wg sync.WaitGroup
		for i := range 300 {
			ctx, cancel := context.WithCancel(context.Background())
			var body io.Reader
			method := "GET"
			if i%3 == 0 {
				method, body = "POST", strings.NewReader(strings.Repeat("b", 100000))
			}
			req := httptest.NewRequest(method, fmt.Sprintf("http://app.example.com/x?d=%d", rng.IntN(2000)), body).WithContext(ctx)
			after := time.Duration(rng.IntN(3000)) * time.Microsecond
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { recover() }() // a cut answer aborts the handler (http.ErrAbortHandler)
				time.AfterFunc(after, cancel)
				p.ServeHTTP(httptest.NewRecorder(), req)
			}()
			if i%8 == 7 {
				wg.Wait()
			}
		}
		wg.Wait()
		waitFor(t, func() bool { return p.InFlight() == 0 })
		obs.mu.Lock()
		if obs.started != len(obs.done) || obs.errs != 0 {
			t.Errorf("fast=%v: %d started, %d done, %d counted against the backend; want as many done as started and none against it",
				fast, obs.started, len(obs.done), obs.errs)
		}
		obs.mu.Unlock()
	}
}
