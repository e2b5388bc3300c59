package healthcheck

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// servePath reports n finished requests to path, errs of them errors (half 5xx, half proxy
// errors), as the proxy does through RequestDonePath.
func servePath(m *Monitor, path string, n, errs int) {
	for i := range n {
		m.RequestStarted()
		switch {
		case i >= errs:
			m.RequestDonePath(path, 200, false)
		case i%2 == 0:
			m.RequestDonePath(path, 503, false)
		default:
			m.RequestDonePath(path, 0, true)
		}
	}
}

var checkoutRule = PathSpec{Prefix: "/checkout/", ErrorRate: 0.5, Window: 10 * time.Second, MinRequests: 10, Cooldown: 20 * time.Second}

// pathMonitor has the global error rate of errorRateMonitor (0.5 over 10s, 20 requests,
// 30s cooldown) and the given path rules.
func pathMonitor(t *testing.T, paths ...PathSpec) *Monitor {
	t.Helper()
	return passiveMonitor(t, PassiveSpec{ErrorRate: 0.5, Window: 10 * time.Second, MinRequests: 20,
		Cooldown: 30 * time.Second, Paths: paths})
}

func wantHealthy(t *testing.T, m *Monitor, ok bool, reason string) {
	t.Helper()
	if gotOK, gotReason := m.Healthy(); gotOK != ok || gotReason != reason {
		t.Fatalf("Healthy() = %v %q, want %v %q", gotOK, gotReason, ok, reason)
	}
}

func TestPassivePathTripsOnItsErrorsOnly(t *testing.T) {
	m := pathMonitor(t, checkoutRule)
	// Errors elsewhere, under the global threshold: 15/60 = 0.25, but 15/30 on /api/.
	// Requests that merely look alike (no trailing slash, a longer segment) are not under the
	// prefix.
	servePath(m, "/api/orders", 30, 15)
	servePath(m, "/checkout", 15, 0)
	servePath(m, "/checkouts/1", 15, 0)
	tick(m, t0.Add(time.Second))
	wantHealthy(t, m, true, "")
	if p := m.Status().Passive.Paths; len(p) != 1 || p[0] != (PathStatus{Prefix: "/checkout/"}) {
		t.Fatalf("path status %+v, want nothing counted under /checkout/", p)
	}

	// Under the prefix: 9 errors out of 9 are below min_requests.
	servePath(m, "/checkout/pay", 9, 9)
	tick(m, t0.Add(2*time.Second))
	wantHealthy(t, m, true, "")

	// The tenth trips the rule (10/10), while the global rate stays under its threshold
	// (25/70 = 0.36).
	servePath(m, "/checkout/", 1, 1)
	tick(m, t0.Add(3*time.Second))
	want := `passive: path "/checkout/": error rate 1.00 >= 0.50 over 10s (10/10 requests)`
	wantHealthy(t, m, false, want)
	st := m.Status().Passive
	if st.Reason != want || st.TrippedUntil == nil || !st.TrippedUntil.Equal(t0.Add(23*time.Second)) {
		t.Fatalf("passive status %+v, want tripped until +23s (the rule's 20s cooldown)", st)
	}
	if st.Requests != 70 || st.Errors != 25 {
		t.Fatalf("global window %d/%d, want 25/70", st.Errors, st.Requests)
	}
	if p := st.Paths[0]; p.Requests != 10 || p.Errors != 10 || p.ErrorRate != 1 {
		t.Fatalf("path status %+v", p)
	}

	// The rule's own cooldown, then a fresh window: the old errors are not held against the
	// node again.
	tick(m, t0.Add(23*time.Second-time.Millisecond))
	wantHealthy(t, m, false, want)
	tick(m, t0.Add(23*time.Second))
	wantHealthy(t, m, true, "")
	servePath(m, "/checkout/pay", 10, 0)
	tick(m, t0.Add(24*time.Second))
	wantHealthy(t, m, true, "")
	if p := m.Status().Passive.Paths[0]; p.Requests != 10 || p.Errors != 0 {
		t.Fatalf("window after the cooldown %+v, want the 10 new requests only", p)
	}
}

func TestPassiveGlobalWithPathRules(t *testing.T) {
	m := pathMonitor(t, checkoutRule)
	servePath(m, "/checkout/pay", 10, 0)
	servePath(m, "/api/", 20, 20)
	tick(m, t0.Add(time.Second))
	// The global rule sees every request (20/30); the path rule only its own (0/10).
	wantHealthy(t, m, false, "passive: error rate 0.67 >= 0.50 over 10s (20/30 requests)")
	if until := m.Status().Passive.TrippedUntil; until == nil || !until.Equal(t0.Add(31*time.Second)) {
		t.Fatalf("tripped until %v, want +31s (the global cooldown)", until)
	}

	// RequestDone, which has no path, counts for the global rule only.
	m2 := pathMonitor(t, checkoutRule)
	for range 20 {
		m2.RequestStarted()
		m2.RequestDone(503, false)
	}
	tick(m2, t0.Add(time.Second))
	wantHealthy(t, m2, false, "passive: error rate 1.00 >= 0.50 over 10s (20/20 requests)")
	if p := m2.Status().Passive.Paths[0]; p.Requests != 0 {
		t.Fatalf("path rule counted a request without a path: %+v", p)
	}

	// Path rules without the global one.
	m3 := passiveMonitor(t, PassiveSpec{Paths: []PathSpec{checkoutRule}})
	servePath(m3, "/", 100, 100)
	servePath(m3, "/checkout/a", 10, 5)
	tick(m3, t0.Add(time.Second))
	wantHealthy(t, m3, false, `passive: path "/checkout/": error rate 0.50 >= 0.50 over 10s (5/10 requests)`)
	if st := m3.Status().Passive; st.Requests != 0 || st.Paths[0].Requests != 10 {
		t.Fatalf("status %+v", st)
	}
}

func TestPassivePathEveryMatchingRuleCounts(t *testing.T) {
	api := PathSpec{Prefix: "/api/", ErrorRate: 0.9, Window: 10 * time.Second, MinRequests: 1, Cooldown: time.Minute}
	pay := PathSpec{Prefix: "/api/pay/", ErrorRate: 0.5, Window: 10 * time.Second, MinRequests: 1, Cooldown: time.Minute}
	m := passiveMonitor(t, PassiveSpec{Paths: []PathSpec{api, pay}})
	servePath(m, "/api/pay/1", 4, 2)
	servePath(m, "/api/users", 6, 0)
	tick(m, t0.Add(time.Second))
	p := m.Status().Passive.Paths
	if p[0].Requests != 10 || p[0].Errors != 2 || p[1].Requests != 4 || p[1].Errors != 2 {
		t.Fatalf("path status %+v, want /api/ 2/10 and /api/pay/ 2/4", p)
	}
	wantHealthy(t, m, false, `passive: path "/api/pay/": error rate 0.50 >= 0.50 over 10s (2/4 requests)`)
}

func TestPassivePathOwnWindow(t *testing.T) {
	// A short rule beside the 10s global one: the ticker runs at the short rule's step
	// (100ms), the global rule samples every 250ms, and each slides over its own window.
	short := PathSpec{Prefix: "/s/", ErrorRate: 0.5, Window: time.Second, MinRequests: 4, Cooldown: time.Second}
	m := pathMonitor(t, short)
	if m.passive.tick != 100*time.Millisecond || m.passive.global.every != 2 || m.passive.paths[0].every != 1 {
		t.Fatalf("tick %s, every %d and %d", m.passive.tick, m.passive.global.every, m.passive.paths[0].every)
	}
	servePath(m, "/s/x", 3, 3)
	at := t0
	for range 15 { // 1.5s: the errors leave the short window, not the global one
		at = at.Add(100 * time.Millisecond)
		tick(m, at)
	}
	servePath(m, "/s/x", 2, 0)
	at = at.Add(100 * time.Millisecond)
	tick(m, at)
	wantHealthy(t, m, true, "")
	st := m.Status().Passive
	if st.Paths[0].Requests != 2 || st.Requests != 5 || st.Errors != 3 {
		t.Fatalf("status %+v: want the short window to hold 0/2, the global one 3/5", st)
	}
}

func TestPassivePathSpecErrors(t *testing.T) {
	many := make([]PathSpec, MaxPathRules+1)
	for i := range many {
		many[i] = checkoutRule
		many[i].Prefix = fmt.Sprintf("/p%d/", i)
	}
	for _, tt := range []struct {
		paths []PathSpec
		want  string
	}{
		{many, "33 passive path rules, at most 32"},
		{[]PathSpec{{Prefix: "checkout/", ErrorRate: 0.5, Window: time.Second, Cooldown: time.Second}}, `must start with "/"`},
		{[]PathSpec{{Prefix: "/a/", ErrorRate: 0, Window: time.Second, Cooldown: time.Second}}, "error rate 0 must be within (0, 1]"},
		{[]PathSpec{{Prefix: "/a/", ErrorRate: 1.5, Window: time.Second, Cooldown: time.Second}}, "error rate 1.5 must be within (0, 1]"},
		{[]PathSpec{{Prefix: "/a/", ErrorRate: 0.5, Cooldown: time.Second}}, "window 0s must be > 0"},
		{[]PathSpec{{Prefix: "/a/", ErrorRate: 0.5, Window: time.Second}}, "cooldown 0s must be > 0"},
		{[]PathSpec{{Prefix: "/a/", ErrorRate: 0.5, Window: time.Second, Cooldown: time.Second, MinRequests: -1}}, "min requests -1 is negative"},
		{[]PathSpec{checkoutRule, checkoutRule}, `"/checkout/": duplicate prefix`},
	} {
		_, err := New(Options{Passive: PassiveSpec{Paths: tt.paths}}, zapNop())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%d paths): %v, want %q", len(tt.paths), err, tt.want)
		}
	}
	if _, err := New(Options{Passive: PassiveSpec{Paths: many[:MaxPathRules]}}, zapNop()); err != nil {
		t.Errorf("%d rules: %v", MaxPathRules, err)
	}
}

func TestPassivePathLogsAndStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, logs := newMonitor(t, Options{Passive: PassiveSpec{Paths: []PathSpec{checkoutRule}}})
		m.Start(context.Background())
		defer m.Stop()
		<-m.FirstRoundDone()
		servePath(m, "/checkout/pay", 10, 10)
		time.Sleep(time.Second) // the passive ticker runs every 250ms
		synctest.Wait()
		want := `passive: path "/checkout/": error rate 1.00 >= 0.50 over 10s (10/10 requests)`
		wantHealthy(t, m, false, want)
		// Still failing on the next ticks: no second log line.
		servePath(m, "/checkout/pay", 10, 10)
		time.Sleep(time.Second)
		synctest.Wait()
		b, err := json.Marshal(m.Status())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"paths":[{"prefix":"/checkout/","error_rate":1,"requests":20,"errors":20}]`) {
			t.Fatalf("status JSON %s", b)
		}
		time.Sleep(20 * time.Second)
		synctest.Wait()
		wantHealthy(t, m, true, "")
		entries := logs.TakeAll()
		if len(entries) != 3 || entries[1].Message != "backend unhealthy" ||
			entries[1].ContextMap()["check"] != "passive" || entries[1].ContextMap()["reason"] != want {
			t.Fatalf("logs %v, want healthy, unhealthy (the path rule), healthy", entries)
		}
	})
}

func rules(n int) []PathSpec {
	out := make([]PathSpec, n)
	for i := range out {
		out[i] = checkoutRule
		out[i].Prefix = fmt.Sprintf("/app%02d/", i)
	}
	return out
}

func TestRequestDonePathDoesNotAllocate(t *testing.T) {
	m, _ := newMonitor(t, Options{Passive: PassiveSpec{ErrorRate: 0.5, Window: 10 * time.Second, MaxInFlight: 1,
		Cooldown: time.Second, Paths: rules(MaxPathRules)}})
	allocs := testing.AllocsPerRun(1000, func() {
		m.RequestStarted()
		m.RequestStarted()
		m.RequestDonePath("/app07/cart", 200, false) // matches one rule
		m.RequestDonePath("/app31/x", 503, false)    // matches the last one
		m.RequestStarted()
		m.RequestDonePath("/elsewhere", 0, true) // matches none
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per request", allocs)
	}
}

// BenchmarkRequestPath is RequestStarted + RequestDonePath with n path rules, for a path
// under the last rule (every prefix is compared).
func BenchmarkRequestPath(b *testing.B) {
	for _, n := range []int{0, 1, 4, MaxPathRules} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			m, err := New(Options{Passive: PassiveSpec{ErrorRate: 0.5, Window: 10 * time.Second, MaxInFlight: 1 << 30,
				Cooldown: time.Second, Paths: rules(n)}}, zapNop())
			if err != nil {
				b.Fatal(err)
			}
			path := fmt.Sprintf("/app%02d/cart/checkout", max(n-1, 0))
			b.ReportAllocs()
			for b.Loop() {
				m.RequestStarted()
				m.RequestDonePath(path, 200, false)
			}
		})
	}
}
