package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// fakeLeader is a Leader a test sets by hand.
type fakeLeader struct {
	mu      sync.Mutex
	url     string
	changed chan struct{}
	seeks   []time.Duration // the windows Seek was called with
}

func newFakeLeader() *fakeLeader { return &fakeLeader{changed: make(chan struct{})} }

func (l *fakeLeader) ActiveURL() (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.url, l.url != ""
}

func (l *fakeLeader) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

func (l *fakeLeader) Seek(window time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seeks = append(l.seeks, window)
}

func (l *fakeLeader) set(u string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.url = u
	close(l.changed)
	l.changed = make(chan struct{})
}

// node is one proxy with its own backend, as one baton node.
type testNode struct {
	p       *Proxy
	fence   *fakeFence
	leader  *fakeLeader
	front   *httptest.Server
	backend atomic.Int32 // requests its backend saw
}

func newTestNode(t *testing.T, name string, mode string, hold time.Duration) *testNode {
	t.Helper()
	n := &testNode{fence: &fakeFence{}, leader: newFakeLeader()}
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.backend.Add(1)
		w.Header().Set("X-Instance", name)
		io.WriteString(w, r.Header.Get("X-Forwarded-For")+"|"+r.Host+"|"+r.Header.Get(ForwardedHeader))
	}))
	t.Cleanup(be.Close)
	u, _ := url.Parse(be.URL)
	p, err := New(Options{Backend: u, Fence: n.fence, Standby: mode, Hold: hold, Leader: n.leader, NodeName: name}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	n.p = p
	t.Cleanup(p.Close)
	n.front = httptest.NewServer(p)
	t.Cleanup(n.front.Close)
	return n
}

func doGet(t *testing.T, u string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Host = "app.example.com"
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestForwardToActive(t *testing.T) {
	a := newTestNode(t, "a", StandbyForward, time.Second)
	b := newTestNode(t, "b", StandbyForward, time.Second)
	b.fence.ok.Store(true) // b is active
	a.leader.set(b.front.URL)

	res, body := doGet(t, a.front.URL+"/x", map[string]string{"X-Forwarded-For": "203.0.113.9"})
	if res.StatusCode != 200 || res.Header.Get("X-Instance") != "b" {
		t.Fatalf("forwarded request: %d from %q", res.StatusCode, res.Header.Get("X-Instance"))
	}
	// b's backend sees a's address (no secret: the marker vouches for
	// nothing; see forwardmark_test.go), not the client's forged chain,
	// the original Host, and no marker.
	if want := "127.0.0.1|app.example.com|"; body != want {
		t.Errorf("backend saw %q, want %q", body, want)
	}
	if !res.Close {
		t.Error("a forwarded response must close the client connection")
	}
	if a.backend.Load() != 0 {
		t.Error("the standby's own backend was used")
	}
	if c := a.p.Counters(); c.Forwarded != 1 || c.Local != 0 {
		t.Errorf("a's counters %+v", c)
	}
}

// TestNoForwardingLoop: two nodes that each believe the other is active
// forward a request at most once; the second hop answers 503.
func TestNoForwardingLoop(t *testing.T) {
	a := newTestNode(t, "a", StandbyForward, time.Second)
	b := newTestNode(t, "b", StandbyForward, time.Second)
	a.leader.set(b.front.URL)
	b.leader.set(a.front.URL)
	res, _ := doGet(t, a.front.URL, nil)
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d Retry-After %q, want 503 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
	}
	ca, cb := a.p.Counters(), b.p.Counters()
	if ca.Forwarded != 1 || cb.Forwarded != 0 || cb.Rejected != 1 {
		t.Errorf("a %+v, b %+v: want one forward by a and one rejection by b", ca, cb)
	}
	if a.backend.Load()+b.backend.Load() != 0 {
		t.Error("a backend served although neither node is active")
	}
}

func TestRejectMode(t *testing.T) {
	a := newTestNode(t, "a", StandbyReject, time.Second)
	a.leader.set("http://127.0.0.1:1")
	start := time.Now()
	res, _ := doGet(t, a.front.URL, nil)
	if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" {
		t.Fatalf("reject: %d, Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("reject mode waited %v; it must answer at once", d)
	}
}

func TestHoldWithoutActive(t *testing.T) {
	hold := 300 * time.Millisecond
	a := newTestNode(t, "a", StandbyForward, hold)
	start := time.Now()
	res, _ := doGet(t, a.front.URL, nil)
	took := time.Since(start)
	if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" {
		t.Fatalf("no active: %d Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
	if took < hold || took > hold+time.Second {
		t.Errorf("answered after %v, want about drain.hold = %v", took, hold)
	}
	a.leader.mu.Lock()
	defer a.leader.mu.Unlock()
	if len(a.leader.seeks) != 1 || a.leader.seeks[0] != hold {
		t.Errorf("Seek calls %v, want one with the hold %v", a.leader.seeks, hold)
	}
}

func TestHoldUntilActiveAppears(t *testing.T) {
	a := newTestNode(t, "a", StandbyForward, 5*time.Second)
	b := newTestNode(t, "b", StandbyForward, time.Second)
	b.fence.ok.Store(true)
	time.AfterFunc(200*time.Millisecond, func() { a.leader.set(b.front.URL) })
	res, _ := doGet(t, a.front.URL, nil)
	if res.StatusCode != 200 || res.Header.Get("X-Instance") != "b" {
		t.Fatalf("held request: %d from %q", res.StatusCode, res.Header.Get("X-Instance"))
	}
}

func TestHoldUntilSelfActive(t *testing.T) {
	a := newTestNode(t, "a", StandbyForward, 5*time.Second)
	time.AfterFunc(200*time.Millisecond, func() { a.fence.ok.Store(true); a.leader.set("") })
	res, _ := doGet(t, a.front.URL, nil)
	if res.StatusCode != 200 || res.Header.Get("X-Instance") != "a" {
		t.Fatalf("held request: %d from %q", res.StatusCode, res.Header.Get("X-Instance"))
	}
}

func TestForwardToUnreachableActive(t *testing.T) {
	a := newTestNode(t, "a", StandbyForward, time.Second)
	a.leader.set("http://127.0.0.1:1") // nothing listens there
	res, _ := doGet(t, a.front.URL, nil)
	if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" {
		t.Fatalf("unreachable active: %d, want 503 with Retry-After", res.StatusCode)
	}
}

func TestDemotedResponseClosesConnection(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	_, f, front, _ := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "done")
	}), nil)
	type result struct {
		res  *http.Response
		body string
	}
	done := make(chan result, 1)
	go func() {
		res, err := http.Get(front.URL)
		if err != nil {
			done <- result{}
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		done <- result{res, string(b)}
	}()
	<-entered
	f.ok.Store(false) // demoted while the request runs
	close(release)
	r := <-done
	if r.res == nil || r.res.StatusCode != 200 || r.body != "done" {
		t.Fatalf("in-flight request did not finish on the old backend: %+v", r)
	}
	if !r.res.Close {
		t.Error("the response of a demoted node lacks Connection: close")
	}
}

func TestStatusCountsAndAccessLog(t *testing.T) {
	a := newTestNode(t, "a", StandbyForward, 100*time.Millisecond)
	b := newTestNode(t, "b", StandbyForward, time.Second)
	b.fence.ok.Store(true)
	core, logs := observer.New(zap.InfoLevel)
	a.p.SetAccessLog(zap.New(core))
	a.leader.set(b.front.URL)
	doGet(t, a.front.URL+"/f", nil) // forwarded
	a.leader.set("")
	doGet(t, a.front.URL+"/r", nil) // no active: rejected after the hold
	a.fence.ok.Store(true)
	a.fence.term.Store(4)
	doGet(t, a.front.URL+"/l", nil) // local
	a.p.SetAccessLog(nil)
	doGet(t, a.front.URL+"/quiet", nil)

	c := a.p.StatusCounts()
	if c[PathLocal][2] != 2 || c[PathForwarded][2] != 1 || c[PathRejected][5] != 1 {
		t.Errorf("status counts %v", c)
	}
	entries := logs.FilterMessage("request").All()
	if len(entries) != 3 {
		t.Fatalf("%d access log lines, want 3", len(entries))
	}
	want := []struct {
		path, taken string
		status      int64
	}{{"/f", "forwarded", 200}, {"/r", "rejected", 503}, {"/l", "local", 200}}
	for i, e := range entries {
		f := e.ContextMap()
		if f["path"] != want[i].path || f["taken"] != want[i].taken || f["status"] != want[i].status || f["host"] != "app.example.com" {
			t.Errorf("line %d: %v", i, f)
		}
	}
	if entries[2].ContextMap()["term"] != uint64(4) {
		t.Errorf("local line term %v", entries[2].ContextMap()["term"])
	}
}
