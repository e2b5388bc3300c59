package healthcheck

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// fakeChecker returns whatever the test set last; block makes it wait for its deadline.
type fakeChecker struct {
	mu    sync.Mutex
	err   error
	block bool
	calls int
}

func (f *fakeChecker) set(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeChecker) setBlock(b bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.block = b
}

func (f *fakeChecker) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeChecker) Check(ctx context.Context) (string, error) {
	f.mu.Lock()
	err, block := f.err, f.block
	f.calls++
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return "", ctx.Err()
	}
	if err != nil {
		return "fake output", err
	}
	return "fake output", nil
}

var errRefused = errors.New("GET http://127.0.0.1:8080/: connection refused")

func newMonitor(t *testing.T, o Options) (*Monitor, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	m, err := New(o, zap.New(core))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m, logs
}

func spec(name string, c Checker, rise, fall int) CheckSpec {
	return CheckSpec{Name: name, Interval: 2 * time.Second, Timeout: time.Second, Rise: rise, Fall: fall, Required: true, Checker: c}
}

// parseSeq turns "PPF" into pass, pass, fail and "011" into false, true, true.
func parseSeq(s string, one byte) []bool {
	out := make([]bool, len(s))
	for i := range s {
		out[i] = s[i] == one
	}
	return out
}

var riseFallTests = []struct {
	name       string
	rise, fall int
	runs       string // P pass, F fail
	healthy    string // after each run: 1 healthy, 0 not
}{
	{"rise 1 fall 1", 1, 1, "PFPF", "1010"},
	{"starts unhealthy, rise 2", 2, 1, "PP", "01"},
	{"rise needs consecutive passes", 2, 2, "PFPP", "0001"},
	{"fall 2 ignores one failure", 2, 2, "PPFPFF", "011110"},
	{"rise 3 fall 3", 3, 3, "PPPFFPFFF", "001111110"},
	{"never passes", 2, 2, "FFFF", "0000"},
	{"zero means one", 0, 0, "PF", "10"},
}

// TestRiseFall applies the thresholds to a check directly.
func TestRiseFall(t *testing.T) {
	for _, tt := range riseFallTests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newMonitor(t, Options{Checks: []CheckSpec{spec("app", &fakeChecker{}, tt.rise, tt.fall)}})
			c := m.checks[0]
			want := parseSeq(tt.healthy, '1')
			for i, pass := range parseSeq(tt.runs, 'P') {
				res := Result{OK: pass}
				if !pass {
					res.Reason = "boom"
				}
				c.record(res, m.log)
				if got := c.healthy.Load(); got != want[i] {
					t.Fatalf("after run %d (%s): healthy %v, want %v", i+1, tt.runs[:i+1], got, want[i])
				}
			}
		})
	}
}

// TestMonitorRiseFall runs the same sequences through a started Monitor on its ticker.
func TestMonitorRiseFall(t *testing.T) {
	for _, tt := range riseFallTests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fake := &fakeChecker{}
				m, _ := newMonitor(t, Options{Checks: []CheckSpec{spec("app", fake, tt.rise, tt.fall)}})
				want := parseSeq(tt.healthy, '1')
				for i, pass := range parseSeq(tt.runs, 'P') {
					if pass {
						fake.set(nil)
					} else {
						fake.set(errRefused)
					}
					if i == 0 {
						m.Start(context.Background())
						defer m.Stop()
						<-m.FirstRoundDone()
					} else {
						time.Sleep(2 * time.Second) // fake time: the next tick
						synctest.Wait()
					}
					if got, reason := m.Healthy(); got != want[i] {
						t.Fatalf("after run %d (%s): healthy %v (%s), want %v", i+1, tt.runs[:i+1], got, reason, want[i])
					}
				}
				if got := fake.Calls(); got != len(tt.runs) {
					t.Fatalf("%d runs, want %d", got, len(tt.runs))
				}
			})
		})
	}
}

func TestMonitorFirstRound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fast, slow := &fakeChecker{}, &fakeChecker{}
		slowSpec := spec("slow", &delayed{d: 500 * time.Millisecond, c: slow}, 1, 1)
		m, _ := newMonitor(t, Options{Checks: []CheckSpec{spec("fast", fast, 1, 1), slowSpec}})
		if ok, reason := m.Healthy(); ok || reason != "health checks not started" {
			t.Fatalf("before Start: %v %q", ok, reason)
		}
		start := time.Now()
		m.Start(context.Background())
		defer m.Stop()
		m.Start(context.Background()) // a second Start does nothing
		synctest.Wait()
		select {
		case <-m.FirstRoundDone():
			t.Fatal("first round done before the slow check ran")
		default:
		}
		if ok, reason := m.Healthy(); ok || reason != `check "slow": not checked yet` {
			t.Fatalf("during the first round: %v %q", ok, reason)
		}
		<-m.FirstRoundDone()
		if d := time.Since(start); d != 500*time.Millisecond {
			t.Fatalf("first round took %s, want the checks run at once (500ms)", d)
		}
		if ok, reason := m.Healthy(); !ok {
			t.Fatalf("after the first round: unhealthy: %s", reason)
		}
	})
}

// delayed answers after d (fake time in a bubble).
type delayed struct {
	d time.Duration
	c Checker
}

func (d *delayed) Check(ctx context.Context) (string, error) {
	select {
	case <-time.After(d.d):
		return d.c.Check(ctx)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func TestMonitorRisingIsNotLoggedAsFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := &fakeChecker{}
		m, logs := newMonitor(t, Options{Checks: []CheckSpec{spec("app", fake, 2, 2)}})
		m.Start(context.Background())
		defer m.Stop()
		<-m.FirstRoundDone()
		if ok, reason := m.Healthy(); ok || reason != `check "app": rising, 1 of 2 passes` {
			t.Fatalf("after one pass: %v %q", ok, reason)
		}
		if logs.Len() != 0 {
			t.Fatalf("logged %v while rising", logs.All())
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if entries := logs.TakeAll(); len(entries) != 1 || entries[0].Message != "backend healthy" {
			t.Fatalf("logs %v, want one backend healthy", entries)
		}
	})
}

func TestMonitorLogsOncePerTransition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := &fakeChecker{}
		fake.set(errRefused)
		m, logs := newMonitor(t, Options{Checks: []CheckSpec{spec("app", fake, 2, 2)}})
		m.Start(context.Background())
		defer m.Stop()

		// Refused for five minutes: 150 runs, one line.
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		entries := logs.TakeAll()
		if len(entries) != 1 {
			t.Fatalf("%d lines after five minutes of failures, want 1: %v", len(entries), entries)
		}
		e := entries[0]
		wantReason := `check "app": GET http://127.0.0.1:8080/: connection refused`
		if e.Level != zapcore.WarnLevel || e.Message != "backend unhealthy" ||
			e.ContextMap()["check"] != "app" || e.ContextMap()["reason"] != wantReason {
			t.Fatalf("line %v %q %v", e.Level, e.Message, e.ContextMap())
		}
		if fake.Calls() < 150 {
			t.Fatalf("%d runs in five minutes at 2s, want >= 150", fake.Calls())
		}

		// Recovers: one Info line, however long it stays healthy.
		fake.set(nil)
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		entries = logs.TakeAll()
		if len(entries) != 1 || entries[0].Level != zapcore.InfoLevel || entries[0].Message != "backend healthy" {
			t.Fatalf("after recovery: %v", entries)
		}

		// One failure (fall 2) logs nothing; two log one line.
		fake.set(errors.New("status 500, want 200-399"))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if logs.Len() != 0 {
			t.Fatalf("one failure logged: %v", logs.All())
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if entries = logs.TakeAll(); len(entries) != 1 || entries[0].ContextMap()["reason"] != `check "app": status 500, want 200-399` {
			t.Fatalf("after fall: %v", entries)
		}
		if s := m.Status(); s.Flaps != 2 || s.Checks[0].Flaps != 2 {
			t.Fatalf("flaps %d / %d, want 2", s.Flaps, s.Checks[0].Flaps)
		}
	})
}

func TestMonitorChanged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := &fakeChecker{}
		fake.set(errRefused)
		m, _ := newMonitor(t, Options{Checks: []CheckSpec{spec("app", fake, 1, 1)}})
		ch := m.Changed()
		m.Start(context.Background())
		defer m.Stop()
		<-m.FirstRoundDone()
		select {
		case <-ch:
			t.Fatal("Changed closed while health stayed false")
		default:
		}
		fake.set(nil)
		<-ch // closed by the next tick's pass
		if ok, _ := m.Healthy(); !ok {
			t.Fatal("Changed closed but Healthy() is false")
		}
		ch2 := m.Changed()
		if ch2 == ch {
			t.Fatal("Changed returned the closed channel again")
		}
		// The reason changing alone does not wake watchers.
		fake.set(errRefused)
		<-ch2
		ch3 := m.Changed()
		fake.set(errors.New("timeout after 1s"))
		time.Sleep(10 * time.Second)
		synctest.Wait()
		select {
		case <-ch3:
			t.Fatal("Changed closed on a reason change")
		default:
		}
		if _, reason := m.Healthy(); reason != `check "app": timeout after 1s` {
			t.Fatalf("reason %q not updated", reason)
		}
	})
}

func TestMonitorTimeoutAndStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := &fakeChecker{}
		fake.setBlock(true)
		m, logs := newMonitor(t, Options{Checks: []CheckSpec{spec("slow", fake, 1, 1)}})
		start := time.Now()
		m.Start(context.Background())
		<-m.FirstRoundDone()
		if d := time.Since(start); d != time.Second {
			t.Fatalf("first run took %s, want the 1s timeout", d)
		}
		if ok, reason := m.Healthy(); ok || reason != `check "slow": timeout after 1s` {
			t.Fatalf("Healthy() = %v %q", ok, reason)
		}
		// Stop cancels the run in flight (started by the tick 2s after the first run ended,
		// at 3s) and discards it.
		time.Sleep(2*time.Second + 500*time.Millisecond)
		calls := fake.Calls()
		m.Stop()
		m.Stop() // idempotent
		if calls != 2 {
			t.Fatalf("%d runs before Stop, want 2", calls)
		}
		if s := m.Status(); len(s.Checks[0].Results) != 1 {
			t.Fatalf("%d results, want the cancelled run discarded", len(s.Checks[0].Results))
		}
		if logs.Len() != 1 {
			t.Fatalf("logs %v, want only the first-round warning", logs.All())
		}
	})
}

func TestMonitorStopBeforeFirstRound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := &fakeChecker{}
		fake.setBlock(true)
		m, logs := newMonitor(t, Options{Checks: []CheckSpec{spec("slow", fake, 1, 1)}})
		m.Start(context.Background())
		synctest.Wait()
		m.Stop()
		select {
		case <-m.FirstRoundDone():
			t.Fatal("first round reported done though it was cancelled")
		default:
		}
		if ok, _ := m.Healthy(); ok || logs.Len() != 0 {
			t.Fatalf("healthy %v, logs %v", ok, logs.All())
		}
		m.Start(context.Background()) // after Stop: nothing
		synctest.Wait()
		if fake.Calls() != 1 {
			t.Fatalf("%d runs, want 1", fake.Calls())
		}
	})
}

func TestMonitorContextCancelStopsChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := &fakeChecker{}
		m, _ := newMonitor(t, Options{Checks: []CheckSpec{spec("app", fake, 1, 1)}})
		ctx, cancel := context.WithCancel(context.Background())
		m.Start(ctx)
		<-m.FirstRoundDone()
		cancel()
		time.Sleep(time.Minute)
		if fake.Calls() != 1 {
			t.Fatalf("%d runs after the context was cancelled, want 1", fake.Calls())
		}
		m.Stop()
	})
}

func TestMonitorReasons(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		app, db, extra := &fakeChecker{}, &fakeChecker{}, &fakeChecker{}
		app.set(errRefused)
		db.set(errors.New("exit status 2: db down"))
		extra.set(errors.New("optional is down"))
		optional := spec("extra", extra, 1, 1)
		optional.Required = false
		core, logs := observer.New(zapcore.InfoLevel)
		m, err := New(Options{Checks: []CheckSpec{spec("app", app, 1, 1), spec("db", db, 1, 1), optional}}, zap.New(core))
		if err != nil {
			t.Fatal(err)
		}
		m.Start(context.Background())
		defer m.Stop()
		<-m.FirstRoundDone()
		want := `check "app": GET http://127.0.0.1:8080/: connection refused; check "db": exit status 2: db down`
		if ok, reason := m.Healthy(); ok || reason != want {
			t.Fatalf("Healthy() = %v %q, want %q", ok, reason, want)
		}
		// Only the required checks count.
		app.set(nil)
		db.set(nil)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if ok, reason := m.Healthy(); !ok {
			t.Fatalf("unhealthy with an optional check down: %q", reason)
		}
		// The optional check's own transition is logged (nothing else would say it).
		extra.set(nil)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := logs.FilterMessage("check healthy").FilterField(zap.String("check", "extra")).Len(); got != 1 {
			t.Fatalf("%d optional check lines, want 1: %v", got, logs.All())
		}
	})
}

func TestMonitorCustomCheckerTimeoutAndPanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, logs := newMonitor(t, Options{Checks: []CheckSpec{
			spec("ctx", checkerFunc(func(ctx context.Context) (string, error) { <-ctx.Done(); return "", ctx.Err() }), 1, 1),
			spec("panics", checkerFunc(func(context.Context) (string, error) { panic("boom") }), 1, 1),
		}})
		m.Start(context.Background())
		defer m.Stop()
		<-m.FirstRoundDone()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		want := `check "ctx": timeout after 1s; check "panics": checker panicked: boom`
		if _, reason := m.Healthy(); reason != want {
			t.Fatalf("reason %q, want %q", reason, want)
		}
		if n := logs.FilterMessage("health checker panicked").Len(); n != 1 {
			t.Fatalf("%d panic lines, want 1", n)
		}
	})
}

type checkerFunc func(context.Context) (string, error)

func (f checkerFunc) Check(ctx context.Context) (string, error) { return f(ctx) }

func TestMonitorStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := &fakeChecker{}
		fake.set(errRefused)
		tcp := NewTCP("127.0.0.1:1") // never dialled: the check is not started
		m, _ := newMonitor(t, Options{History: 3, Checks: []CheckSpec{spec("app", fake, 1, 2)}})
		m.Start(context.Background())
		defer m.Stop()
		for range 4 {
			time.Sleep(2 * time.Second)
		}
		synctest.Wait()
		s := m.Status()
		if s.Healthy || !s.FirstRoundDone || len(s.Checks) != 1 {
			t.Fatalf("status %+v", s)
		}
		c := s.Checks[0]
		if c.Name != "app" || c.Type != "" || !c.Required || c.Healthy || c.ConsecutiveFails != 5 || c.ConsecutivePasses != 0 {
			t.Fatalf("check status %+v", c)
		}
		if len(c.Results) != 3 {
			t.Fatalf("%d results, want history 3", len(c.Results))
		}
		last := c.Results[2]
		if last.OK || last.Reason != errRefused.Error() || last.Output != "fake output" || !last.At.Equal(time.Now()) {
			t.Fatalf("last result %+v", last)
		}
		if !c.Results[0].At.Before(c.Results[1].At) {
			t.Fatal("results not oldest first")
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`"healthy":false`, `"consecutive_fails":5`, `"duration":"0s"`, `"in_flight":0`, `"flaps":0`} {
			if !strings.Contains(string(b), want) {
				t.Fatalf("JSON %s lacks %s", b, want)
			}
		}
		if typ := tcp.(typed).Type(); typ != "tcp" {
			t.Fatalf("tcp type %q", typ)
		}
	})
}

func TestNewRejects(t *testing.T) {
	ok := spec("app", &fakeChecker{}, 1, 1)
	with := func(f func(*CheckSpec)) []CheckSpec {
		s := ok
		f(&s)
		return []CheckSpec{s}
	}
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"empty name", Options{Checks: with(func(s *CheckSpec) { s.Name = "" })}, "empty name"},
		{"duplicate", Options{Checks: []CheckSpec{ok, ok}}, `check "app": duplicate name`},
		{"no checker", Options{Checks: with(func(s *CheckSpec) { s.Checker = nil })}, "no checker"},
		{"no interval", Options{Checks: with(func(s *CheckSpec) { s.Interval = 0 })}, "interval 0s must be > 0"},
		{"no timeout", Options{Checks: with(func(s *CheckSpec) { s.Timeout = 0 })}, "timeout 0s must be > 0"},
		{"negative rise", Options{Checks: with(func(s *CheckSpec) { s.Rise = -1 })}, "rise -1"},
		{"negative fall", Options{Checks: with(func(s *CheckSpec) { s.Fall = -1 })}, "fall -1"},
		{"negative history", Options{History: -1}, "history -1"},
		{"error rate above 1", Options{Passive: PassiveSpec{ErrorRate: 1.5, Window: time.Second, Cooldown: time.Second}}, "within [0, 1]"},
		{"error rate without window", Options{Passive: PassiveSpec{ErrorRate: 0.5, Cooldown: time.Second}}, "needs a window"},
		{"signal without cooldown", Options{Passive: PassiveSpec{MaxInFlight: 10}}, "need a cooldown"},
		{"negative max in flight", Options{Passive: PassiveSpec{MaxInFlight: -1}}, "max in flight -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.o, zap.NewNop())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := New(Options{}, nil); err == nil {
		t.Fatal("New accepted a nil logger")
	}
}

func TestMonitorWithoutChecks(t *testing.T) {
	m, _ := newMonitor(t, Options{})
	m.Start(context.Background())
	defer m.Stop()
	<-m.FirstRoundDone()
	if ok, reason := m.Healthy(); !ok {
		t.Fatalf("no checks, no passive signal: unhealthy: %s", reason)
	}
}

func TestStartHealthyCarriesVerdict(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var results []Result
		fail := &fakeChecker{}
		fail.set(errors.New("status 500, want 200-399"))
		m, err := New(Options{
			Checks:       []CheckSpec{{Name: "app", Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 2, Fall: 2, Required: true, Checker: fail}},
			StartHealthy: true,
			OnResult: func(name string, r Result) {
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			},
		}, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := m.Healthy(); !ok {
			t.Fatal("a monitor started healthy is not healthy before its first run")
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		m.Start(ctx)
		defer m.Stop()
		synctest.Wait()
		if ok, _ := m.Healthy(); !ok {
			t.Error("one failure flipped a monitor started healthy; fall is 2")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if ok, reason := m.Healthy(); ok || !strings.Contains(reason, "status 500") {
			t.Errorf("after fall failures: ok=%v reason %q", ok, reason)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(results) != 2 || results[0].OK {
			t.Errorf("OnResult saw %+v", results)
		}
	})
}
