package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonproxy/baton/cmd/baton/internal/node"
	"github.com/batonproxy/baton/peer"
)

// at is a time offset from a fixed base, for synthetic samples.
var drillBase = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func at(ms int) time.Time { return drillBase.Add(time.Duration(ms) * time.Millisecond) }

func okSample(startMS, endMS int, ident string) drillSample {
	return drillSample{start: at(startMS), end: at(endMS), code: 200, ident: ident, by: "Baton-Node"}
}

// TestAnalyzeDrill: the measurement on a synthetic run, 20 ms apart,
// node-a until the step-down at 1000 ms, then 503s and a timeout, then
// node-b from 1139 ms.
func TestAnalyzeDrill(t *testing.T) {
	var ss []drillSample
	for ms := 0; ms < 1000; ms += 20 {
		ss = append(ss, okSample(ms, ms+3, "node-a; term=7"))
	}
	ss = append(ss,
		okSample(1000, 1030, "node-a; term=7"), // in flight at the step-down: the old one answers
		drillSample{start: at(1020), end: at(1025), code: 503, ident: "node-a; term=7", by: "Baton-Node"},
		drillSample{start: at(1040), end: at(1140), err: "context deadline exceeded", timeout: true},
		drillSample{start: at(1060), end: at(1061), err: "connection refused", newConn: true},
		okSample(1080, 1140, "node-b; term=8"),
		okSample(1100, 1139, "node-b; term=8"), // ends first: the first answer of the new active
	)
	for ms := 1160; ms < 2000; ms += 20 {
		ss = append(ss, okSample(ms, ms+2, "node-b; term=8"))
	}
	r := analyzeDrill(ss, at(1000))
	if r.Requests != len(ss) || r.Failed != 3 || r.Succeeded != len(ss)-3 || r.Timeouts != 1 || r.Errors != 1 || r.FailedStatuses["503"] != 1 || r.FailedBefore != 0 || r.FailedNewConns != 1 {
		t.Errorf("counts: %d requests, %d ok, %d failed (%d timeouts, %d errors, statuses %v, %d before)",
			r.Requests, r.Succeeded, r.Failed, r.Timeouts, r.Errors, r.FailedStatuses, r.FailedBefore)
	}
	if !strings.Contains(r.FirstFailure, "503") || !strings.Contains(r.FirstFailure, "sent 20 ms after the step-down: 503") {
		t.Errorf("first failure %q", r.FirstFailure)
	}
	// Successes end at 983, 1030, 1139, 1140, 1162, ...: the longest gap
	// is 1030..1139.
	if r.LongestGapMS != 109 || r.GapStartMS != 30 {
		t.Errorf("longest gap %v ms from %v ms, want 109 from 30", r.LongestGapMS, r.GapStartMS)
	}
	if r.OldActive != "node-a; term=7" || r.NewActive != "node-b; term=8" || r.IdentifiedBy != "Baton-Node" {
		t.Errorf("old %q new %q by %q", r.OldActive, r.NewActive, r.IdentifiedBy)
	}
	if r.NewActiveMS == nil || *r.NewActiveMS != 139 {
		t.Errorf("new active after %v ms, want 139 (the first answer from node-b to end)", *r.NewActiveMS)
	}
}

func TestAnalyzeDrillEdges(t *testing.T) {
	t.Run("the same node under a newer term is a new active", func(t *testing.T) {
		r := analyzeDrill([]drillSample{okSample(0, 1, "a; term=3"), okSample(10, 40, "a; term=3"), okSample(20, 50, "a; term=4")}, at(5))
		if r.NewActive != "a; term=4" || *r.NewActiveMS != 45 {
			t.Errorf("new %q after %v", r.NewActive, r.NewActiveMS)
		}
	})
	t.Run("X-Instance fallback", func(t *testing.T) {
		ss := []drillSample{{start: at(0), end: at(1), code: 200, ident: "app-a", by: "X-Instance"},
			{start: at(10), end: at(12), code: 200, ident: "app-b", by: "X-Instance"}}
		r := analyzeDrill(ss, at(5))
		if r.OldActive != "app-a" || r.NewActive != "app-b" || r.IdentifiedBy != "X-Instance" || *r.NewActiveMS != 7 {
			t.Errorf("old %q new %q by %q after %v", r.OldActive, r.NewActive, r.IdentifiedBy, r.NewActiveMS)
		}
	})
	t.Run("nothing names the node", func(t *testing.T) {
		r := analyzeDrill([]drillSample{{start: at(0), end: at(1), code: 200}, {start: at(10), end: at(12), code: 204}}, at(5))
		if r.OldActive != "" || r.NewActive != "" || r.IdentifiedBy != "" || r.NewActiveMS != nil || r.Failed != 0 {
			t.Errorf("%+v", r)
		}
		_, ok := drillJudge(r, node.Status{Node: "a"}, "Baton-Node", nil, true)
		if !ok {
			t.Errorf("an unidentifiable switch with no failure is not a failure")
		}
	})
	t.Run("every request failed: the gap is the whole run", func(t *testing.T) {
		r := analyzeDrill([]drillSample{{start: at(0), end: at(1), code: 502}, {start: at(10), end: at(300), err: "x"}}, at(5))
		if r.LongestGapMS != 300 || r.GapStartMS != -5 || r.FailedBefore != 1 {
			t.Errorf("gap %v from %v, %d failed before", r.LongestGapMS, r.GapStartMS, r.FailedBefore)
		}
	})
	t.Run("failures at the end count in the gap", func(t *testing.T) {
		r := analyzeDrill([]drillSample{okSample(0, 1, "a; term=1"), {start: at(10), end: at(500), err: "x", timeout: true}}, at(5))
		if r.LongestGapMS != 499 {
			t.Errorf("gap %v, want 499", r.LongestGapMS)
		}
	})
}

// fakeLB is a load balancer's front end whose answers switch from one
// node to another: switchTo starts a gap of answers with status gapCode
// (or, with stall, answers that come too late), then the new node.
type fakeLB struct {
	*httptest.Server
	mu       sync.Mutex
	ident    string // what it answers with (Baton-Node); "" none
	instance string // X-Instance
	gapUntil time.Time
	gapCode  int
	stall    time.Duration
	next     string
	requests atomic.Int64
}

func newFakeLB(t *testing.T, ident, instance string) *fakeLB {
	lb := &fakeLB{ident: ident, instance: instance}
	lb.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lb.requests.Add(1)
		lb.mu.Lock()
		if !lb.gapUntil.IsZero() && !time.Now().Before(lb.gapUntil) {
			lb.ident, lb.gapUntil = lb.next, time.Time{}
		}
		inGap, code, stall, ident, instance := !lb.gapUntil.IsZero(), lb.gapCode, lb.stall, lb.ident, lb.instance
		lb.mu.Unlock()
		if inGap {
			if stall > 0 {
				select {
				case <-time.After(stall):
				case <-r.Context().Done():
				}
				return
			}
			w.WriteHeader(code)
			return
		}
		if ident != "" {
			w.Header().Set("Baton-Node", ident)
		}
		if instance != "" {
			w.Header().Set("X-Instance", instance)
		}
		io.WriteString(w, "hello\n")
	}))
	t.Cleanup(lb.Close)
	return lb
}

func (lb *fakeLB) switchTo(next string, gap time.Duration, code int, stall time.Duration) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.next, lb.gapUntil, lb.gapCode, lb.stall = next, time.Now().Add(gap), code, stall
}

// TestDrillLoadAgainstASwitchingServer: the load and the measurement
// against a real HTTP server whose answers switch nodes with a 150 ms gap
// of 503s.
func TestDrillLoadAgainstASwitchingServer(t *testing.T) {
	lb := newFakeLB(t, "node-a; term=7", "")
	l := startDrillLoad(lb.URL+"/", "baton-node", "test", 200, 500*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	step := time.Now()
	lb.switchTo("node-b; term=8", 150*time.Millisecond, http.StatusServiceUnavailable, 0)
	time.Sleep(500 * time.Millisecond)
	ss, skipped := l.finish()
	r := analyzeDrill(ss, step)
	t.Logf("%d requests (server saw %d), %d failed, gap %.1f ms, new active after %v ms", r.Requests, lb.requests.Load(), r.Failed, r.LongestGapMS, *r.NewActiveMS)
	if skipped != 0 || int64(r.Requests) != lb.requests.Load() {
		t.Errorf("%d samples, %d skipped; the server saw %d requests", r.Requests, skipped, lb.requests.Load())
	}
	if r.Requests < 80 { // 200/s for 0.8 s, on a slow machine
		t.Errorf("only %d requests in 0.8 s at 200/s", r.Requests)
	}
	if r.Failed == 0 || r.FailedStatuses["503"] != r.Failed || r.Timeouts+r.Errors != 0 || r.FailedBefore != 0 {
		t.Errorf("failed %d: statuses %v, %d timeouts, %d errors, %d before", r.Failed, r.FailedStatuses, r.Timeouts, r.Errors, r.FailedBefore)
	}
	if r.LongestGapMS < 150 || r.LongestGapMS > 600 {
		t.Errorf("longest gap %.1f ms, want the 150 ms gap (and not much more)", r.LongestGapMS)
	}
	if r.OldActive != "node-a; term=7" || r.NewActive != "node-b; term=8" || *r.NewActiveMS < 150 || *r.NewActiveMS > 600 {
		t.Errorf("old %q new %q after %v ms", r.OldActive, r.NewActive, *r.NewActiveMS)
	}
}

// TestDrillLoadTimeouts: answers that come too late count as timeouts.
func TestDrillLoadTimeouts(t *testing.T) {
	lb := newFakeLB(t, "", "app-a")
	l := startDrillLoad(lb.URL, "Baton-Node", "test", 100, 100*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	step := time.Now()
	lb.switchTo("", 200*time.Millisecond, 0, time.Second)
	lb.mu.Lock()
	lb.instance = "app-b"
	lb.mu.Unlock()
	time.Sleep(500 * time.Millisecond)
	ss, _ := l.finish()
	r := analyzeDrill(ss, step)
	if r.Timeouts == 0 || r.Timeouts != r.Failed {
		t.Errorf("%d failed, %d timeouts, want every failure a timeout", r.Failed, r.Timeouts)
	}
	if r.IdentifiedBy != "X-Instance" || r.NewActive != "app-b" {
		t.Errorf("identified by %q, new %q", r.IdentifiedBy, r.NewActive)
	}
	if r.LongestGapMS < 200 {
		t.Errorf("longest gap %.1f ms, want at least the 200 ms of stalled answers", r.LongestGapMS)
	}
}

// fakeAdmin is a node's admin API for the drill: /status, /step-down
// (which makes lb switch) and /drill/result.
type fakeAdmin struct {
	*httptest.Server
	status    atomic.Pointer[node.Status]
	steps     atomic.Int32
	stepQuery atomic.Pointer[string]
	result    atomic.Pointer[node.DrillResult]
}

func newFakeAdmin(t *testing.T, st node.Status, onStep func()) *fakeAdmin {
	fa := &fakeAdmin{}
	fa.status.Store(&st)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(fa.status.Load()) })
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer tok" {
				w.WriteHeader(http.StatusForbidden)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("POST /step-down", auth(func(w http.ResponseWriter, r *http.Request) {
		fa.steps.Add(1)
		q := r.URL.RawQuery
		fa.stepQuery.Store(&q)
		onStep()
		io.WriteString(w, `{"result": "stepped down"}`)
	}))
	mux.HandleFunc("POST /drill/result", auth(func(w http.ResponseWriter, r *http.Request) {
		var d node.DrillResult
		if err := json.NewDecoder(r.Body).Decode(&d); err != nil {
			t.Errorf("drill result: %v", err)
		}
		fa.result.Store(&d)
		io.WriteString(w, `{"result": "recorded"}`)
	}))
	fa.Server = httptest.NewServer(mux)
	t.Cleanup(fa.Close)
	return fa
}

func activeStatus() node.Status {
	return node.Status{Node: "node-a", Role: "active", Serving: true, Term: 7,
		Peers: []peer.PeerStatus{{Address: "10.0.0.5:8083", Node: "node-b", Reachable: true, Role: "standby"}}}
}

func tokenFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDrillCommand runs `baton drill` against a fake load balancer and a
// fake admin API: a clean switch exits 0, one with lost requests 1, and the
// result reaches the admin API either way.
func TestDrillCommand(t *testing.T) {
	for _, tc := range []struct {
		name    string
		gapCode int
		to      string
		json    bool
		want    int
	}{
		{name: "clean", want: exitOK},
		{name: "handover -to, JSON", to: "node-b", json: true, want: exitOK},
		{name: "requests lost", gapCode: http.StatusBadGateway, want: exitFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lb := newFakeLB(t, "node-a; term=7", "app-a")
			admin := newFakeAdmin(t, activeStatus(), func() {
				gap := time.Duration(0)
				if tc.gapCode != 0 {
					gap = 100 * time.Millisecond
				}
				lb.switchTo("node-b; term=8", gap, tc.gapCode, 0)
			})
			args := []string{"drill", "-url", lb.URL + "/x?secret=1", "-admin", admin.URL, "-token-file", tokenFile(t),
				"-rate", "100", "-before", "300ms", "-after", "400ms", "-timeout", "500ms"}
			if tc.to != "" {
				args = append(args, "-to", tc.to)
			}
			if tc.json {
				args = append(args, "-json")
			}
			var stdout, stderr bytes.Buffer
			start := time.Now()
			code := run(args, &stdout, &stderr)
			t.Logf("exit %d in %v\n%s%s", code, time.Since(start).Round(time.Millisecond), stdout.String(), stderr.String())
			if code != tc.want {
				t.Fatalf("exit %d, want %d", code, tc.want)
			}
			if admin.steps.Load() != 1 {
				t.Errorf("%d step-downs sent, want 1", admin.steps.Load())
			}
			if q := *admin.stepQuery.Load(); (tc.to == "") != (q == "") || tc.to != "" && q != "to=node-b" {
				t.Errorf("step-down query %q", q)
			}
			d := admin.result.Load()
			if d == nil {
				t.Fatal("no result posted to the admin API")
			}
			if d.URL != lb.URL+"/x" || d.Node != "node-a" || d.NewActive != "node-b; term=8" || d.OldActive != "node-a; term=7" || d.OK != (tc.want == exitOK) {
				t.Errorf("posted %+v", d)
			}
			if tc.json {
				var got node.DrillResult
				if err := json.Unmarshal(stdout.Bytes(), &got); err != nil || got.Requests != d.Requests || got.To != "node-b" {
					t.Errorf("-json output: %v: %s", err, stdout.String())
				}
			} else {
				for _, want := range []string{"node-b; term=8 (Baton-Node), first answer", "longest gap", "requests"} {
					if !strings.Contains(stdout.String(), want) {
						t.Errorf("output lacks %q", want)
					}
				}
				if tc.want == exitFailure && (!strings.Contains(stdout.String(), "502: ") || !strings.Contains(stdout.String(), "FAILED")) {
					t.Errorf("output does not show the failures")
				}
			}
			if !strings.Contains(stderr.String(), "baton drill ") || strings.Contains(stderr.String(), "\r") {
				t.Errorf("progress on a non-terminal: want plain lines, got %q", stderr.String())
			}
		})
	}
}

// TestDrillRefuses: what makes the drill stop before it steps anything
// down (exit 2), and a service that is down (exit 1, no step-down).
func TestDrillRefuses(t *testing.T) {
	defer func(w time.Duration) { drillPeerWait = w }(drillPeerWait)
	drillPeerWait = 300 * time.Millisecond
	lb := newFakeLB(t, "node-a; term=7", "")
	tok := tokenFile(t)
	standby := activeStatus()
	standby.Node, standby.Role, standby.Serving = "node-b", "standby", false
	standby.Holder = &node.Holder{Node: "node-a", Term: 7, AdvertiseURL: "http://10.0.0.4:80"}
	lonely := activeStatus()
	lonely.Peers[0].Role, lonely.Peers[0].Reachable = "", false
	for _, tc := range []struct {
		name string
		st   node.Status
		args []string
		want string
	}{
		{"no url", activeStatus(), []string{}, "-url is required"},
		{"bad url", activeStatus(), []string{"-url", "ftp://x"}, "absolute http"},
		{"rate", activeStatus(), []string{"-url", lb.URL, "-rate", "5000"}, "-rate 5000"},
		{"too long", activeStatus(), []string{"-url", lb.URL, "-before", "60s", "-after", "60s"}, "at most 1m30s"},
		{"timeout", activeStatus(), []string{"-url", lb.URL, "-timeout", "1m"}, "-timeout 1m0s"},
		{"no token", activeStatus(), []string{"-url", lb.URL, "-token-file", ""}, "needs the admin token"},
		{"standby", standby, []string{"-url", lb.URL}, "node-b (admin API http://"},
		{"-to self", activeStatus(), []string{"-url", lb.URL, "-to", "node-a"}, "the active node itself"},
		{"-to unknown", activeStatus(), []string{"-url", lb.URL, "-to", "node-c"}, "not a peer of node-a (its peers: node-b (standby))"},
		{"no standby", lonely, []string{"-url", lb.URL}, "no peer of node-a is a reachable standby"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			admin := newFakeAdmin(t, tc.st, func() { t.Error("stepped down") })
			args := append([]string{"drill", "-admin", admin.URL, "-token-file", tok}, tc.args...)
			var stdout, stderr bytes.Buffer
			if code := run(args, &stdout, &stderr); code != exitUsage {
				t.Errorf("exit %d, want 2", code)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q, want %q", stderr.String(), tc.want)
			}
			if tc.name == "standby" && !strings.Contains(stderr.String(), "the active node is node-a (term 7, serving at http://10.0.0.4:80)") {
				t.Errorf("does not name the active node: %s", stderr.String())
			}
			if lb.requests.Load() != 0 {
				t.Errorf("%d requests sent although the drill was refused", lb.requests.Load())
			}
		})
	}
	t.Run("service down", func(t *testing.T) {
		down := newFakeLB(t, "", "")
		down.switchTo("", time.Hour, http.StatusServiceUnavailable, 0)
		admin := newFakeAdmin(t, activeStatus(), func() { t.Error("stepped down a service that is down") })
		var stdout, stderr bytes.Buffer
		code := run([]string{"drill", "-admin", admin.URL, "-token-file", tok, "-url", down.URL, "-before", "100ms", "-timeout", "100ms"}, &stdout, &stderr)
		if code != exitFailure || !strings.Contains(stdout.String(), "the service is not up, so node-a was not stepped down") {
			t.Errorf("exit %d: %s", code, stdout.String())
		}
		if admin.result.Load() != nil {
			t.Errorf("a drill that stepped nothing down was recorded")
		}
	})
}

// TestStatusShowsLastDrill: `baton status` prints the last drill's line.
func TestStatusShowsLastDrill(t *testing.T) {
	st := activeStatus()
	after := 31.2
	st.LastDrill = &node.DrillResult{Requests: 412, Succeeded: 412, LongestGapMS: 38.4, NewActive: "node-b; term=8",
		NewActiveMS: &after, OK: true, RecordedAt: drillBase}
	var out bytes.Buffer
	printStatus(&out, st)
	want := "last drill  2026-01-02T03:04:05Z: 0 of 412 requests failed, longest gap 38 ms, node-b; term=8 answered 31 ms after the step-down"
	if !strings.Contains(out.String(), want) {
		t.Errorf("status output lacks %q:\n%s", want, out.String())
	}
	st.LastDrill.OK = false
	if s := drillSummary(*st.LastDrill); !strings.HasPrefix(s, "FAILED: ") {
		t.Errorf("failed drill: %q", s)
	}
}

// TestDrillPreflightWaitsForAPeer: a standby peer the node has not said
// hello to yet is waited for (a few seconds), not taken for missing.
func TestDrillPreflightWaitsForAPeer(t *testing.T) {
	unknown := activeStatus()
	unknown.Peers[0] = peer.PeerStatus{Address: "10.0.0.5:8083", LastError: "connection refused"}
	admin := newFakeAdmin(t, unknown, func() {})
	time.AfterFunc(500*time.Millisecond, func() { st := activeStatus(); admin.status.Store(&st) })
	a := adminFlags{url: admin.URL}
	start := time.Now()
	if _, err := drillPreflight(&a, "node-b"); err != nil {
		t.Fatalf("preflight: %v", err)
	}
	if d := time.Since(start); d < 400*time.Millisecond || d > drillPeerWait {
		t.Errorf("preflight took %v, want until the peer showed (500 ms)", d)
	}
}
