package peer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/batonproxy/baton/lease"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeLocal is a node's side for tests.
type fakeLocal struct {
	mu       sync.Mutex
	hello    Hello
	nudges   atomic.Int64
	holders  []lease.Record
	adoptOK  error
	adopted  []string
	ids      atomic.Int64
	promises []string
	rounds   []uint64 // of every Promise and Withdraw call
}

func (f *fakeLocal) Hello() Hello { f.mu.Lock(); defer f.mu.Unlock(); return f.hello }
func (f *fakeLocal) Nudge()       { f.nudges.Add(1) }
func (f *fakeLocal) NoteHolder(rec lease.Record) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.holders = append(f.holders, rec)
}
func (f *fakeLocal) CanAdopt() error { f.mu.Lock(); defer f.mu.Unlock(); return f.adoptOK }
func (f *fakeLocal) Adopt(_ context.Context, id string) (lease.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.adopted = append(f.adopted, id)
	return lease.Record{Holder: f.hello.Node, Term: f.hello.Term + 1}, nil
}
func (f *fakeLocal) NewLeaseID() string { return "id-" + string(rune('0'+f.ids.Add(1))) }
func (f *fakeLocal) Promise(from string, round uint64, window time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rounds = append(f.rounds, round)
	if f.hello.Active {
		return errors.New("lease: active here, cannot promise to stand by")
	}
	f.promises = append(f.promises, fmt.Sprintf("%s %s", from, window))
	return nil
}
func (f *fakeLocal) Withdraw(from string, round uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rounds = append(f.rounds, round)
	f.promises = append(f.promises, "withdraw "+from)
}

type end struct {
	link  *Link
	local *fakeLocal
	srv   *httptest.Server
	logs  *observer.ObservedLogs
}

// pair starts two linked ends, a and b, with the given secrets.
func pair(t *testing.T, secretA, secretB string) (a, b *end) {
	t.Helper()
	mk := func(name, secret string) *end {
		core, logs := observer.New(zapcore.DebugLevel)
		loc := &fakeLocal{hello: Hello{Node: name, Role: "standby"}}
		e := &end{local: loc, logs: logs}
		e.srv = httptest.NewUnstartedServer(nil)
		var err error
		e.link, err = New(Options{NodeName: name, Secret: []byte(secret), Timeout: 300 * time.Millisecond}, loc, zap.New(core))
		if err != nil {
			t.Fatal(err)
		}
		e.srv.Config.Handler = e.link.Handler()
		e.srv.Start()
		t.Cleanup(func() { e.link.Close(); e.srv.Close() })
		return e
	}
	a, b = mk("a", secretA), mk("b", secretB)
	a.link.opts.Peers = []string{b.srv.Listener.Addr().String()}
	a.link.peers = map[string]*PeerStatus{a.link.opts.Peers[0]: {Address: a.link.opts.Peers[0]}}
	b.link.opts.Peers = []string{a.srv.Listener.Addr().String()}
	b.link.peers = map[string]*PeerStatus{b.link.opts.Peers[0]: {Address: b.link.opts.Peers[0]}}
	return a, b
}

func TestHelloAndHolderAlive(t *testing.T) {
	a, b := pair(t, "s3cret", "s3cret")
	b.local.mu.Lock()
	b.local.hello = Hello{Node: "b", Role: "active", Active: true, Term: 7}
	b.local.mu.Unlock()
	a.link.probeAll()
	p := a.link.Peers()[0]
	if !p.Reachable || p.Node != "b" || !p.Active || p.Term != 7 || p.RTT <= 0 || p.LastError != "" {
		t.Fatalf("peer status %+v", p)
	}
	if !a.link.HolderAlive(t.Context(), lease.Record{Holder: "b", Term: 7}) {
		t.Error("b does not vouch for term 7")
	}
	if a.link.HolderAlive(t.Context(), lease.Record{Holder: "b", Term: 6}) {
		t.Error("b vouched for a term it does not hold")
	}
	if a.link.HolderAlive(t.Context(), lease.Record{Holder: "c", Term: 7}) {
		t.Error("an unknown node was vouched for")
	}
}

func TestPushes(t *testing.T) {
	a, b := pair(t, "s", "s")
	a.link.Released(3)
	a.link.Acquired(lease.Record{Holder: "a", Term: 4, AdvertiseURL: "http://a"})
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.local.mu.Lock()
		n := len(b.local.holders)
		b.local.mu.Unlock()
		if b.local.nudges.Load() == 1 && n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pushes not delivered: %d nudges, %d holders", b.local.nudges.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if h := b.local.holders[0]; h.Holder != "a" || h.Term != 4 || h.AdvertiseURL != "http://a" {
		t.Errorf("pushed record %+v", h)
	}
}

func TestWrongSecretIsRejectedAndLoggedOnce(t *testing.T) {
	a, b := pair(t, "right", "wrong")
	for range 5 {
		a.link.probeAll()
	}
	p := a.link.Peers()[0]
	if p.Reachable || !strings.Contains(p.LastError, "rejected our authentication") {
		t.Fatalf("peer status %+v", p)
	}
	if n := b.logs.FilterMessage("peer call rejected").Len(); n != 1 {
		t.Errorf("rejection logged %d times, want once", n)
	}
	if n := a.logs.FilterMessage("peer unreachable").Len(); n != 1 {
		t.Errorf("unreachable logged %d times, want once", n)
	}
	for _, l := range append(a.logs.All(), b.logs.All()...) {
		if strings.Contains(l.Message+l.ContextMap()["error"].(string), "right") {
			t.Errorf("secret in a log line: %v", l)
		}
	}
	if a.link.HolderAlive(t.Context(), lease.Record{Holder: "b"}) {
		t.Error("vouched over a rejected link")
	}
}

// TestReplayAndSkew sends a signed request twice and one with an old time
// stamp: both are refused.
func TestReplayAndSkew(t *testing.T) {
	a, b := pair(t, "s", "s")
	url := "http://" + a.link.opts.Peers[0] + pathReleased
	body := []byte(`{"from":"x","term":1}`)
	sign := func(ts int64) string {
		hv, _ := a.link.sign.header(http.MethodPost, pathReleased, ts, body, "")
		return hv
	}
	send := func(hv string) int {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set(AuthHeader, hv)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	hv := sign(time.Now().UnixMilli())
	if c := send(hv); c != 200 {
		t.Fatalf("first: %d", c)
	}
	if c := send(hv); c != 401 {
		t.Errorf("replayed: %d, want 401", c)
	}
	if c := send(sign(time.Now().UnixMilli() - 2*MaxSkew.Milliseconds())); c != 401 {
		t.Errorf("stale: %d, want 401", c)
	}
	if n := b.local.nudges.Load(); n != 1 {
		t.Errorf("%d nudges, want 1", n)
	}
	// Unsigned, wrong method, unknown path.
	for _, tc := range []struct {
		method, path string
		want         int
	}{{"POST", pathHello, 401}, {"GET", pathHello, 405}, {"POST", "/x", 404}} {
		req, _ := http.NewRequest(tc.method, "http://"+a.link.opts.Peers[0]+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
		}
	}
}

// TestDownAndSlowPeers: nothing waits longer than the timeout.
func TestDownAndSlowPeers(t *testing.T) {
	core, _ := observer.New(zapcore.InfoLevel)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // lets the server notice the client leaving
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	downAddr := down.Listener.Addr().String()
	down.Close()
	l, err := New(Options{NodeName: "a", Secret: []byte("s"), Timeout: 200 * time.Millisecond,
		Peers: []string{slow.Listener.Addr().String(), downAddr}}, &fakeLocal{}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	start := time.Now()
	l.probeAll()
	if d := time.Since(start); d > time.Second {
		t.Errorf("probing a slow and a down peer took %s", d)
	}
	for _, p := range l.Peers() {
		if p.Reachable || p.LastError == "" {
			t.Errorf("peer %+v", p)
		}
	}
	start = time.Now()
	l.Released(1)
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("Released blocked for %s", d)
	}
}

func TestHandoverThroughTheLink(t *testing.T) {
	a, b := pair(t, "s", "s")
	b.local.mu.Lock()
	b.local.hello = Hello{Node: "b", Term: 5}
	b.local.mu.Unlock()
	if _, err := a.link.Handover(t.Context(), "c"); err == nil || !strings.Contains(err.Error(), "known: b at") {
		t.Errorf("unknown node: %v", err)
	}
	if _, err := a.link.Handover(t.Context(), "a"); err == nil {
		t.Error("handover to ourselves accepted")
	}
	h, err := a.link.Handover(t.Context(), "b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Commit(t.Context(), "id-x"); err == nil {
		t.Error("commit without prepare accepted")
	}
	id, err := h.Prepare(t.Context())
	if err != nil || id == "" {
		t.Fatalf("prepare: %q %v", id, err)
	}
	if _, err := h.Commit(t.Context(), id+"x"); err == nil {
		t.Error("commit with another id accepted")
	}
	id, _ = h.Prepare(t.Context())
	rec, err := h.Commit(t.Context(), id)
	if err != nil || rec.Holder != "b" || rec.Term != 6 {
		t.Fatalf("commit: %+v %v", rec, err)
	}
	if _, err := h.Commit(t.Context(), id); err == nil {
		t.Error("a handover id was used twice")
	}
	b.local.mu.Lock()
	b.local.adoptOK = errors.New("lease: not eligible to take the lease: backend unhealthy")
	b.local.mu.Unlock()
	if _, err := h.Prepare(t.Context()); err == nil || !strings.Contains(err.Error(), "backend unhealthy") {
		t.Errorf("prepare on an unhealthy target: %v", err)
	}
}

func TestFailsafePromises(t *testing.T) {
	a, b := pair(t, "s", "s")
	if !a.link.Promise(t.Context(), 15*time.Second) {
		t.Fatal("a standby peer did not promise")
	}
	b.local.mu.Lock()
	got := append([]string(nil), b.local.promises...)
	b.local.hello.Active = true
	b.local.mu.Unlock()
	if len(got) != 1 || got[0] != "a 15s" {
		t.Errorf("promises given: %q", got)
	}
	b.local.mu.Lock()
	b.local.hello.Active = false
	b.local.mu.Unlock()
	if !a.link.Promise(t.Context(), 15*time.Second) {
		t.Fatal("no second promise")
	}
	b.local.mu.Lock()
	b.local.hello.Active = true
	b.local.mu.Unlock()
	if a.link.Promise(t.Context(), 15*time.Second) {
		t.Error("an active peer promised to stand by")
	}
	a.link.Withdraw()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.local.mu.Lock()
		n := len(b.local.promises)
		rounds := append([]uint64(nil), b.local.rounds...)
		b.local.mu.Unlock()
		if n == 3 {
			// Each request has a later round; the withdraw voids up to
			// the last one asked for (the refused one included).
			if len(rounds) != 4 || rounds[0] == 0 || rounds[1] <= rounds[0] || rounds[2] <= rounds[1] || rounds[3] != rounds[2] {
				t.Errorf("rounds of promise, promise, promise, withdraw: %v", rounds)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("withdraw not delivered")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// No peer: no promise can be had.
	core, _ := observer.New(zapcore.InfoLevel)
	alone, _ := New(Options{NodeName: "x", Secret: []byte("s")}, &fakeLocal{}, zap.New(core))
	defer alone.Close()
	if alone.Promise(t.Context(), time.Second) {
		t.Error("a node without peers got a promise")
	}
	// A peer that is down: no promise, within the context.
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	b.srv.Close()
	if a.link.Promise(ctx, time.Second) {
		t.Error("a promise from a peer that is down")
	}
}
