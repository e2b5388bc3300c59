package healthcheck

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// serve reports n finished requests, errs of them errors (half 5xx, half proxy errors).
func serve(m *Monitor, n, errs int) {
	for i := range n {
		m.RequestStarted()
		switch {
		case i >= errs:
			m.RequestDone(200, false)
		case i%2 == 0:
			m.RequestDone(502, false)
		default:
			m.RequestDone(0, true)
		}
	}
}

// tick evaluates the passive signals at t and republishes the verdict, as runPassive does.
func tick(m *Monitor, at time.Time) {
	if m.passiveEval(at) {
		m.evaluate()
	}
}

// passiveMonitor is a Monitor with no checks, set up as Start would, without its goroutines:
// the test drives the passive ticks with explicit times.
func passiveMonitor(t *testing.T, p PassiveSpec) *Monitor {
	t.Helper()
	m, _ := newMonitor(t, Options{Passive: p})
	m.firstDone.Store(true)
	m.evaluate()
	tick(m, t0)
	return m
}

func errorRateMonitor(t *testing.T) *Monitor {
	t.Helper()
	return passiveMonitor(t, PassiveSpec{ErrorRate: 0.5, Window: 10 * time.Second, MinRequests: 20, Cooldown: 30 * time.Second})
}

func TestPassiveErrorRate(t *testing.T) {
	tests := []struct {
		name       string
		n, errs    int
		wantTrip   bool
		wantReason string
	}{
		{"over threshold", 50, 31, true, "passive: error rate 0.62 >= 0.50 over 10s (31/50 requests)"},
		{"at threshold", 40, 20, true, "passive: error rate 0.50 >= 0.50 over 10s (20/40 requests)"},
		{"under threshold", 50, 24, false, ""},
		{"min requests respected", 19, 19, false, ""},
		{"min requests reached", 20, 20, true, "passive: error rate 1.00 >= 0.50 over 10s (20/20 requests)"},
		{"no traffic", 0, 0, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := errorRateMonitor(t)
			serve(m, tt.n, tt.errs)
			tick(m, t0.Add(time.Second))
			ok, reason := m.Healthy()
			if ok == tt.wantTrip || reason != tt.wantReason {
				t.Fatalf("Healthy() = %v %q, want %v %q", ok, reason, !tt.wantTrip, tt.wantReason)
			}
			p := m.Status().Passive
			if p.Requests != int64(tt.n) || p.Errors != int64(tt.errs) || (p.TrippedUntil != nil) != tt.wantTrip {
				t.Fatalf("passive status %+v", p)
			}
		})
	}
}

func TestPassiveWindowSlides(t *testing.T) {
	m := errorRateMonitor(t)
	// 30 errors early on, then only successes: once the errors are older than the window,
	// they no longer count.
	serve(m, 30, 15)
	tick(m, t0.Add(time.Second))
	if ok, _ := m.Healthy(); ok {
		t.Fatal("15/30 errors should trip at 0.5")
	}
	m2 := errorRateMonitor(t)
	serve(m2, 30, 14) // 14/30 = 0.47: no trip
	for s := 1; s <= 10; s++ {
		tick(m2, t0.Add(time.Duration(s)*time.Second))
	}
	serve(m2, 10, 10) // 24/40 = 0.6 if the old requests still counted
	tick(m2, t0.Add(11*time.Second+500*time.Millisecond))
	if ok, reason := m2.Healthy(); !ok {
		t.Fatalf("old requests still in the window: %s", reason)
	}
	if p := m2.Status().Passive; p.Requests != 10 || p.Errors != 10 {
		t.Fatalf("window holds %d/%d, want the last 10/10 only", p.Errors, p.Requests)
	}
	// Within the window, everything counts.
	serve(m2, 10, 10)
	tick(m2, t0.Add(12*time.Second))
	if ok, reason := m2.Healthy(); ok || reason != "passive: error rate 1.00 >= 0.50 over 10s (20/20 requests)" {
		t.Fatalf("Healthy() = %v %q", ok, reason)
	}
}

func TestPassiveCooldown(t *testing.T) {
	m := errorRateMonitor(t)
	serve(m, 50, 50)
	tick(m, t0.Add(time.Second))
	if ok, _ := m.Healthy(); ok {
		t.Fatal("not tripped")
	}
	until := t0.Add(31 * time.Second)
	if p := m.Status().Passive; p.TrippedUntil == nil || !p.TrippedUntil.Equal(until) {
		t.Fatalf("tripped until %v, want %v", p.TrippedUntil, until)
	}
	tick(m, until.Add(-time.Millisecond))
	if ok, _ := m.Healthy(); ok {
		t.Fatal("healthy before the cooldown ended")
	}
	tick(m, until)
	if ok, reason := m.Healthy(); !ok {
		t.Fatalf("still unhealthy after the cooldown: %s", reason)
	}
	// The errors that tripped it are forgotten, not held against the node again.
	serve(m, 5, 0)
	tick(m, until.Add(time.Second))
	if ok, reason := m.Healthy(); !ok {
		t.Fatalf("re-tripped on old errors: %s", reason)
	}
	// Fresh errors trip it again.
	serve(m, 20, 20)
	tick(m, until.Add(2*time.Second))
	if ok, _ := m.Healthy(); ok {
		t.Fatal("fresh errors did not trip")
	}
	if got := m.Status().Flaps; got != 4 {
		t.Fatalf("flaps %d, want 4 (the first rise, trip, cooldown end, trip)", got)
	}
}

func TestPassiveOverload(t *testing.T) {
	m := passiveMonitor(t, PassiveSpec{MaxInFlight: 3, Cooldown: 10 * time.Second})
	if ok, _ := m.Healthy(); !ok {
		t.Fatal("unhealthy with no load")
	}
	for range 3 {
		m.RequestStarted()
	}
	tick(m, t0.Add(time.Second))
	if ok, reason := m.Healthy(); !ok {
		t.Fatalf("3 in flight is at the limit, not over: %s", reason)
	}
	// A spike between two ticks is caught: 5 in flight, back to 2 before the tick.
	m.RequestStarted()
	m.RequestStarted()
	for range 3 {
		m.RequestDone(200, false)
	}
	if got := m.Status().Passive.InFlight; got != 2 {
		t.Fatalf("in flight %d, want 2", got)
	}
	tick(m, t0.Add(2*time.Second))
	if ok, reason := m.Healthy(); ok || reason != "passive: 5 requests in flight > 3" {
		t.Fatalf("Healthy() = %v %q", ok, reason)
	}
	tick(m, t0.Add(12*time.Second))
	if ok, reason := m.Healthy(); !ok {
		t.Fatalf("still unhealthy after the cooldown: %s", reason)
	}
	// Still over the limit when the cooldown ends: tripped again at once.
	for range 2 {
		m.RequestStarted()
	}
	tick(m, t0.Add(13*time.Second))
	tick(m, t0.Add(23*time.Second))
	if ok, reason := m.Healthy(); ok || reason != "passive: 4 requests in flight > 3" {
		t.Fatalf("Healthy() = %v %q", ok, reason)
	}
}

func TestPassiveWithChecksAndLogs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := &fakeChecker{}
		m, logs := newMonitor(t, Options{
			Checks:  []CheckSpec{spec("app", fake, 1, 1)},
			Passive: PassiveSpec{ErrorRate: 0.5, Window: 10 * time.Second, MinRequests: 10, Cooldown: 20 * time.Second},
		})
		m.Start(context.Background())
		defer m.Stop()
		<-m.FirstRoundDone()
		if ok, _ := m.Healthy(); !ok {
			t.Fatal("not healthy after the first round")
		}
		serve(m, 10, 10)
		time.Sleep(time.Second) // the passive ticker runs every 250ms
		synctest.Wait()
		want := "passive: error rate 1.00 >= 0.50 over 10s (10/10 requests)"
		if ok, reason := m.Healthy(); ok || reason != want {
			t.Fatalf("Healthy() = %v %q, want %q", ok, reason, want)
		}
		// Both a check and the passive signal failing: both named, still one line.
		fake.set(errRefused)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if _, reason := m.Healthy(); reason != `check "app": `+errRefused.Error()+"; "+want {
			t.Fatalf("reason %q", reason)
		}
		fake.set(nil)
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if ok, reason := m.Healthy(); !ok {
			t.Fatalf("unhealthy after the cooldown: %s", reason)
		}
		entries := logs.TakeAll()
		if len(entries) != 3 || entries[1].Message != "backend unhealthy" || entries[1].ContextMap()["check"] != "passive" {
			t.Fatalf("logs %v, want healthy, unhealthy (passive), healthy", entries)
		}
	})
}

func TestRequestPathDoesNotAllocate(t *testing.T) {
	m, _ := newMonitor(t, Options{Passive: PassiveSpec{ErrorRate: 0.5, Window: 10 * time.Second, MaxInFlight: 1, Cooldown: time.Second}})
	allocs := testing.AllocsPerRun(1000, func() {
		m.RequestStarted()
		m.RequestStarted() // over the limit: the compare-and-swap path
		m.RequestDone(200, false)
		m.RequestDone(503, false)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per request", allocs)
	}
}

func BenchmarkRequest(b *testing.B) {
	m, err := New(Options{Passive: PassiveSpec{ErrorRate: 0.5, Window: 10 * time.Second, MaxInFlight: 1 << 30, Cooldown: time.Second}}, zapNop())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		m.RequestStarted()
		m.RequestDone(200, false)
	}
}

func BenchmarkRequestParallel(b *testing.B) {
	m, err := New(Options{Passive: PassiveSpec{ErrorRate: 0.5, Window: 10 * time.Second, MaxInFlight: 1 << 30, Cooldown: time.Second}}, zapNop())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.RequestStarted()
			m.RequestDone(200, false)
		}
	})
}

func BenchmarkHealthy(b *testing.B) {
	m, err := New(Options{}, zapNop())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, _ = m.Healthy()
		}
	})
}
