package lease_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/batonproxy/baton/lease"
	"github.com/batonproxy/baton/lease/leasetest"
)

// The product's default timing (config defaults).
const (
	leaseDuration = 15 * time.Second
	renewInterval = 3 * time.Second
	renewDeadline = 10 * time.Second
	retryInterval = time.Second
	backoff       = 10 * time.Second
)

func testConfig(name string) lease.Config {
	return lease.Config{
		NodeName:         name,
		AdvertiseURL:     "http://" + name + ":80",
		Duration:         leaseDuration,
		RenewInterval:    renewInterval,
		RenewDeadline:    renewDeadline,
		RetryInterval:    retryInterval,
		CandidacyBackoff: backoff,
	}
}

type node struct {
	name string
	e    *lease.Elector
	lock *leasetest.Lock
	logs *observer.ObservedLogs
}

// startNode starts an Elector on a new handle of store, inside a synctest
// bubble. It is stopped at the end of the test.
func startNode(t *testing.T, store *leasetest.Store, cfg lease.Config) *node {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	lock := store.NewLock(cfg.NodeName)
	e, err := lease.NewElector(lock, cfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	e.Start(t.Context())
	t.Cleanup(e.Stop)
	synctest.Wait() // the loop made its first moves and is parked
	return &node{name: cfg.NodeName, e: e, lock: lock, logs: logs}
}

// activeAndStandby starts nodes a and b on store, healthy, and waits until
// a is active and b a standby; it returns b's state then.
func activeAndStandby(t *testing.T, store *leasetest.Store) (a, b *node, sb lease.State) {
	t.Helper()
	a = startNode(t, store, testConfig("a"))
	b = startNode(t, store, testConfig("b"))
	a.e.SetHealthy(true, "ok")
	waitState(t, a.e, time.Second, "a active", roleIs(lease.RoleActive))
	b.e.SetHealthy(true, "ok")
	sb = waitState(t, b.e, time.Second, "b standby", roleIs(lease.RoleStandby))
	return a, b, sb
}

// waitState waits (in bubble time) until cond holds and returns that state.
func waitState(t *testing.T, e *lease.Elector, limit time.Duration, what string, cond func(lease.State) bool) lease.State {
	t.Helper()
	timeout := time.After(limit)
	for {
		s, changed := e.Watch()
		if cond(s) {
			return s
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("%s not reached within %s; state: %+v", what, limit, s)
		}
	}
}

func roleIs(r lease.Role) func(lease.State) bool {
	return func(s lease.State) bool { return s.Role == r }
}

func roleIsNot(r lease.Role) func(lease.State) bool {
	return func(s lease.State) bool { return s.Role != r }
}

// transitions returns the "role changed" log lines as "from>to: reason".
func transitions(t *testing.T, logs *observer.ObservedLogs) []string {
	t.Helper()
	var out []string
	for _, l := range logs.FilterMessage("role changed").All() {
		if l.Level != zapcore.InfoLevel || l.LoggerName != "lease" {
			t.Errorf("role change logged at %s by %q", l.Level, l.LoggerName)
		}
		m := l.ContextMap()
		if _, ok := m["term"]; !ok {
			t.Errorf("role change log without term: %v", m)
		}
		out = append(out, fmt.Sprintf("%s>%s: %s", m["from"], m["to"], m["reason"]))
	}
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// callsIn counts the calls of op that started in [from, to).
func callsIn(l *leasetest.Lock, op leasetest.Op, from, to time.Time) int {
	n := 0
	for _, c := range l.Calls() {
		if c.Op == op && !c.Start.Before(from) && c.Start.Before(to) {
			n++
		}
	}
	return n
}

func TestNewElectorValidation(t *testing.T) {
	store := leasetest.NewStore()
	tests := []struct {
		name string
		mod  func(*lease.Config)
		want []string // substrings of the error; nil: valid
	}{
		{name: "defaults", mod: func(*lease.Config) {}},
		{name: "smallest room for two renews", mod: func(c *lease.Config) { c.RenewInterval, c.RenewDeadline = 5*time.Second, 10*time.Second }},
		{name: "no node name", mod: func(c *lease.Config) { c.NodeName = "" }, want: []string{"node name"}},
		{name: "zero retry", mod: func(c *lease.Config) { c.RetryInterval = 0 }, want: []string{"retry interval 0s"}},
		{name: "zero renew interval", mod: func(c *lease.Config) { c.RenewInterval = 0 }, want: []string{"renew interval 0s"}},
		{name: "interval not below deadline", mod: func(c *lease.Config) { c.RenewInterval = 10 * time.Second },
			want: []string{"renew interval 10s", "renew deadline 10s"}},
		{name: "deadline not below duration", mod: func(c *lease.Config) { c.RenewDeadline = 15 * time.Second },
			want: []string{"renew deadline 15s", "lease duration 15s"}},
		{name: "deadline above duration", mod: func(c *lease.Config) { c.RenewDeadline, c.Duration = 20*time.Second, 15*time.Second },
			want: []string{"renew deadline 20s", "lease duration 15s"}},
		{name: "no room for two renews", mod: func(c *lease.Config) { c.RenewInterval, c.RenewDeadline = 4*time.Second, 7*time.Second },
			want: []string{"renew deadline 7s", "renew interval 4s"}},
		{name: "negative back-off", mod: func(c *lease.Config) { c.CandidacyBackoff = -time.Second }, want: []string{"-1s"}},
		{name: "negative release timeout", mod: func(c *lease.Config) { c.ReleaseTimeout = -time.Second }, want: []string{"-1s"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig("a")
			tc.mod(&cfg)
			e, err := lease.NewElector(store.NewLock("a"), cfg, zap.NewNop())
			if tc.want == nil {
				if err != nil || e == nil {
					t.Fatalf("NewElector: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("NewElector accepted an invalid config")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if _, err := lease.NewElector(nil, testConfig("a"), zap.NewNop()); err == nil {
		t.Error("nil lock accepted")
	}
	if _, err := lease.NewElector(store.NewLock("a"), testConfig("a"), nil); err == nil {
		t.Error("nil logger accepted")
	}
}

func TestAcquire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := leasetest.NewStore()
		n := startNode(t, store, testConfig("a"))
		n.lock.Set(leasetest.Acquire, leasetest.Delay(200*time.Millisecond))

		// No health report yet: no candidacy, but the holder is read.
		time.Sleep(5 * time.Second)
		if c := n.lock.Count(leasetest.Acquire); c != 0 {
			t.Fatalf("%d Acquire calls before the first health report", c)
		}
		if c := n.lock.Count(leasetest.Read); c < 5 {
			t.Errorf("%d Read calls in 5s, want >= 5", c)
		}
		if s := n.e.State(); s.Role != lease.RoleUnhealthy || s.Healthy {
			t.Fatalf("before SetHealthy: %+v", s)
		}
		if _, ok := n.e.Fence(); ok {
			t.Fatal("fence on before acquiring")
		}

		t0 := time.Now()
		n.e.SetHealthy(true, "ok")
		s := waitState(t, n.e, time.Second, "active", roleIs(lease.RoleActive))
		if got := time.Since(t0); got != 200*time.Millisecond {
			t.Errorf("active after %s, want the acquire latency 200ms", got)
		}
		if s.Term != 1 || !s.HolderKnown || s.Holder.Holder != "a" || s.Holder.AdvertiseURL != "http://a:80" {
			t.Errorf("state after acquire: %+v", s)
		}
		// Validity counts from the send time, not the answer.
		if !s.ValidUntil.Equal(t0.Add(renewDeadline)) {
			t.Errorf("ValidUntil = t0+%s, want t0+%s", s.ValidUntil.Sub(t0), renewDeadline)
		}
		if s.RenewLatency != 200*time.Millisecond || !s.LastRenew.Equal(t0.Add(200*time.Millisecond)) {
			t.Errorf("LastRenew t0+%s, latency %s", s.LastRenew.Sub(t0), s.RenewLatency)
		}
		if term, ok := n.e.Fence(); !ok || term != 1 {
			t.Errorf("Fence() = %d, %v; want 1, true", term, ok)
		}
		if rec, ok := store.Holder(); !ok || rec.Holder != "a" || rec.Term != 1 {
			t.Errorf("store: %+v, %v", rec, ok)
		}

		// It keeps the lease: renew every RenewInterval.
		time.Sleep(time.Minute)
		s = n.e.State()
		if s.Role != lease.RoleActive || s.Term != 1 {
			t.Fatalf("after a minute: %+v", s)
		}
		if c := n.lock.Count(leasetest.Renew); c != 20 {
			t.Errorf("%d renews in a minute, want 20", c)
		}
		if _, ok := n.e.Fence(); !ok {
			t.Error("fence off while renewing")
		}

		n.e.Stop()
		if _, ok := store.Holder(); ok {
			t.Error("lease still held after Stop")
		}
		if s := n.e.State(); s.Role != lease.RoleStopping {
			t.Errorf("role after Stop: %s", s.Role)
		}
		if _, ok := n.e.Fence(); ok {
			t.Error("fence on after Stop")
		}
		want := []string{
			"unhealthy>candidate: no holder known",
			"candidate>active: lease acquired",
			"active>stopping: stopped",
		}
		if got := transitions(t, n.logs); !equalStrings(got, want) {
			t.Errorf("transitions:\n got %q\nwant %q", got, want)
		}
	})
}

func TestRenewFailuresDemoteBeforeExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := leasetest.NewStore()
		n := startNode(t, store, testConfig("a"))
		t0 := time.Now()
		n.e.SetHealthy(true, "ok")
		waitState(t, n.e, time.Second, "active", roleIs(lease.RoleActive))
		n.lock.Set(leasetest.Renew, leasetest.Fail(errors.New("503 server busy")))

		s := waitState(t, n.e, time.Minute, "demotion", roleIsNot(lease.RoleActive))
		deadline, expiry := t0.Add(renewDeadline), t0.Add(leaseDuration)
		if !s.Since.Equal(deadline) || !time.Now().Equal(deadline) {
			t.Errorf("demoted at t0+%s, want t0+%s (deadline)", s.Since.Sub(t0), renewDeadline)
		}
		if !s.Since.Before(expiry) {
			t.Errorf("demoted at t0+%s, not before the storage expiry t0+%s", s.Since.Sub(t0), leaseDuration)
		}
		// The storage still has the lease: the node stepped down first.
		if rec, ok := store.Holder(); !ok || rec.Holder != "a" {
			t.Errorf("store at demotion: %+v, %v", rec, ok)
		}
		if s.Role != lease.RoleStandby || s.Reason != "renew deadline passed" {
			t.Errorf("after demotion: %s (%s)", s.Role, s.Reason)
		}
		if !s.BackoffUntil.Equal(deadline.Add(backoff)) {
			t.Errorf("back-off until t0+%s, want t0+%s", s.BackoffUntil.Sub(t0), renewDeadline+backoff)
		}
		if l := n.logs.FilterMessage("lease storage error").All(); len(l) == 0 || !strings.Contains(l[0].ContextMap()["error"].(string), "503 server busy") {
			t.Errorf("storage error not logged: %v", l)
		}
		if _, ok := n.e.Fence(); ok {
			t.Error("fence on after demotion")
		}
		// Renewed at +3s, then retried every RetryInterval: +4s ... +9s.
		if c := callsIn(n.lock, leasetest.Renew, t0, deadline); c != 7 {
			t.Errorf("%d renew attempts before the deadline, want 7", c)
		}
		if c := n.lock.Count(leasetest.Release); c != 0 {
			t.Errorf("%d Release calls after an involuntary demotion", c)
		}
		// One warning for the whole outage.
		if c := n.logs.FilterMessage("lease storage error").Len(); c != 1 {
			t.Errorf("%d storage error log lines, want 1", c)
		}
		// No candidacy during the back-off.
		time.Sleep(backoff - time.Nanosecond)
		if c := callsIn(n.lock, leasetest.Acquire, deadline, time.Now()); c != 0 {
			t.Errorf("%d Acquire calls during the back-off", c)
		}
	})
}

func TestHangingRenewCannotDelayDemotion(t *testing.T) {
	tests := []struct {
		name   string
		action func(gate chan struct{}) leasetest.Action
	}{
		{"renew honours its context", func(chan struct{}) leasetest.Action { return leasetest.Hang() }},
		{"renew ignores its context", func(gate chan struct{}) leasetest.Action { return leasetest.HangIgnoringContext(gate) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				gate := make(chan struct{})
				store := leasetest.NewStore()
				n := startNode(t, store, testConfig("a"))
				n.e.SetHealthy(true, "ok")
				waitState(t, n.e, time.Second, "active", roleIs(lease.RoleActive))
				// One good renew at +3s, so the deadline (+13s) is not on
				// the grid of renew timeouts (+6s, +9s, +12s): the last
				// attempt must be cut to the time left.
				time.Sleep(renewInterval + 500*time.Millisecond)
				t0 := time.Now().Add(-500 * time.Millisecond) // send time of the good renew
				if s := n.e.State(); !s.ValidUntil.Equal(t0.Add(renewDeadline)) {
					t.Fatalf("ValidUntil t0+%s after the renew", s.ValidUntil.Sub(t0))
				}
				n.lock.Set(leasetest.Renew, tc.action(gate))

				time.Sleep(renewDeadline - 500*time.Millisecond - time.Nanosecond)
				synctest.Wait()
				if _, ok := n.e.Fence(); !ok {
					t.Fatal("fence off before the deadline")
				}
				if r := n.e.State().Role; r != lease.RoleActive {
					t.Fatalf("role %s before the deadline", r)
				}
				time.Sleep(time.Nanosecond)
				if _, ok := n.e.Fence(); ok {
					t.Fatal("fence on at the deadline")
				}
				synctest.Wait()
				s := n.e.State()
				if s.Role != lease.RoleStandby || s.Reason != "renew deadline passed" || !s.Since.Equal(t0.Add(renewDeadline)) {
					t.Fatalf("at the deadline: %s (%s) since t0+%s", s.Role, s.Reason, s.Since.Sub(t0))
				}
				// No renew was given time beyond the deadline, and every
				// renew that honours its context ended by then.
				for _, c := range n.lock.Calls() {
					if c.Op != leasetest.Renew || c.Start.Before(t0) {
						continue
					}
					if c.Deadline.IsZero() || c.Deadline.After(t0.Add(renewDeadline)) {
						t.Errorf("renew sent at t0+%s had its context deadline at t0+%s, after the renew deadline", c.Start.Sub(t0), c.Deadline.Sub(t0))
					}
					if !c.End.IsZero() && c.End.After(t0.Add(renewDeadline)) {
						t.Errorf("renew sent at t0+%s ended at t0+%s, after the deadline", c.Start.Sub(t0), c.End.Sub(t0))
					}
				}
				if c := callsIn(n.lock, leasetest.Renew, t0, t0.Add(renewDeadline)); c < 2 {
					t.Errorf("%d renew attempts before the deadline, want >= 2", c)
				}
				close(gate)
			})
		})
	}
}

func TestLeaseLostDemotesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := leasetest.NewStore()
		n := startNode(t, store, testConfig("a"))
		t0 := time.Now()
		n.e.SetHealthy(true, "ok")
		waitState(t, n.e, time.Second, "active", roleIs(lease.RoleActive))
		store.Break()

		s := waitState(t, n.e, time.Minute, "demotion", roleIsNot(lease.RoleActive))
		if want := t0.Add(renewInterval); !s.Since.Equal(want) {
			t.Errorf("demoted at t0+%s, want at the first renew t0+%s", s.Since.Sub(t0), renewInterval)
		}
		if s.Reason != "lease lost" || s.Role != lease.RoleStandby {
			t.Errorf("after demotion: %s (%s)", s.Role, s.Reason)
		}
		if c := n.lock.Count(leasetest.Release); c != 0 {
			t.Errorf("%d Release calls after losing the lease", c)
		}
		if !s.BackoffUntil.Equal(s.Since.Add(backoff)) {
			t.Errorf("back-off until %s after demotion, want %s", s.BackoffUntil.Sub(s.Since), backoff)
		}
		// Back in the race after the back-off, with the next term.
		s = waitState(t, n.e, backoff+2*retryInterval, "active again", roleIs(lease.RoleActive))
		if s.Term != 2 || !s.Since.Equal(t0.Add(renewInterval+backoff)) {
			t.Errorf("re-acquired term %d at t0+%s", s.Term, s.Since.Sub(t0))
		}
	})
}

func TestStopReleasesAndPeerTakesOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := leasetest.NewStore()
		a, b, sb := activeAndStandby(t, store)
		if !sb.HolderKnown || sb.Holder.Holder != "a" || sb.Holder.AdvertiseURL != "http://a:80" || sb.Term != 1 {
			t.Errorf("b's view of the holder: %+v", sb)
		}
		if sb.Reason != "lease held by a" {
			t.Errorf("b standby reason %q", sb.Reason)
		}

		time.Sleep(2500 * time.Millisecond) // between two of b's attempts
		t1 := time.Now()
		a.e.Stop()
		if _, ok := a.e.Fence(); ok {
			t.Error("a fenced on after Stop")
		}
		if c := a.lock.Count(leasetest.Release); c != 1 {
			t.Errorf("a made %d Release calls on Stop, want 1", c)
		}
		if s := a.e.State(); s.Role != lease.RoleStopping {
			t.Errorf("a role after Stop: %s", s.Role)
		}
		sb = waitState(t, b.e, retryInterval, "b active", roleIs(lease.RoleActive))
		if d := sb.Since.Sub(t1); d > retryInterval {
			t.Errorf("b active %s after a's Stop, want <= %s", d, retryInterval)
		}
		if sb.Term != 2 {
			t.Errorf("b term %d, want 2", sb.Term)
		}
		wantA := []string{"unhealthy>candidate: no holder known", "candidate>active: lease acquired", "active>stopping: stopped"}
		if got := transitions(t, a.logs); !equalStrings(got, wantA) {
			t.Errorf("a transitions:\n got %q\nwant %q", got, wantA)
		}
		wantB := []string{"unhealthy>candidate: no holder known", "candidate>standby: lease held by a", "standby>active: lease acquired"}
		if got := transitions(t, b.logs); !equalStrings(got, wantB) {
			t.Errorf("b transitions:\n got %q\nwant %q", got, wantB)
		}
	})
}

func TestNoCandidacyWhileUnhealthy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := leasetest.NewStore()
		holder := startNode(t, store, testConfig("h"))
		holder.e.SetHealthy(true, "ok")
		waitState(t, holder.e, time.Second, "holder active", roleIs(lease.RoleActive))

		n := startNode(t, store, testConfig("a"))
		n.e.SetHealthy(false, "connection refused")
		time.Sleep(30 * time.Second)
		if c := n.lock.Count(leasetest.Acquire); c != 0 {
			t.Fatalf("%d Acquire calls while unhealthy", c)
		}
		s := n.e.State()
		if s.Role != lease.RoleUnhealthy || s.Healthy {
			t.Errorf("unhealthy node: %+v", s)
		}
		// It still knows the holder, for forwarding.
		if !s.HolderKnown || s.Holder.Holder != "h" {
			t.Errorf("unhealthy node does not know the holder: %+v", s)
		}

		// Healthy: a standby at once (the holder is known), no candidate flip.
		n.e.SetHealthy(true, "ok")
		waitState(t, n.e, time.Second, "standby", roleIs(lease.RoleStandby))
		time.Sleep(30*time.Second + 500*time.Millisecond) // between two attempts
		if c := n.lock.Count(leasetest.Acquire); c < 30 {
			t.Errorf("%d Acquire calls in 30s of candidacy, want one per second", c)
		}
		t2 := time.Now()
		n.e.SetHealthy(false, "http 502")
		time.Sleep(30 * time.Second)
		if c := callsIn(n.lock, leasetest.Acquire, t2, time.Now()); c != 0 {
			t.Errorf("%d Acquire calls after SetHealthy(false)", c)
		}
		s = n.e.State()
		if s.Role != lease.RoleUnhealthy || s.Reason != "backend unhealthy: http 502" {
			t.Errorf("after SetHealthy(false): %s (%s)", s.Role, s.Reason)
		}
		want := []string{"unhealthy>standby: lease held by h", "standby>unhealthy: backend unhealthy: http 502"}
		if got := transitions(t, n.logs); !equalStrings(got, want) {
			t.Errorf("transitions:\n got %q\nwant %q", got, want)
		}
	})
}

func TestUnhealthyWhileActive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := leasetest.NewStore()
		n := startNode(t, store, testConfig("a"))
		n.e.SetHealthy(true, "ok")
		waitState(t, n.e, time.Second, "active", roleIs(lease.RoleActive))
		time.Sleep(1500 * time.Millisecond)

		t1 := time.Now()
		n.e.SetHealthy(false, "http 500")
		// Fenced off before SetHealthy returned, before the loop ran.
		if _, ok := n.e.Fence(); ok {
			t.Fatal("fence on right after SetHealthy(false)")
		}
		s := waitState(t, n.e, time.Second, "unhealthy", roleIs(lease.RoleUnhealthy))
		if s.Reason != "backend unhealthy: http 500" || !s.Since.Equal(t1) {
			t.Errorf("demotion: %q at t1+%s", s.Reason, s.Since.Sub(t1))
		}
		if c := n.lock.Count(leasetest.Release); c != 1 {
			t.Errorf("%d Release calls, want 1", c)
		}
		if _, ok := store.Holder(); ok {
			t.Error("lease still held after the unhealthy demotion")
		}
		if !s.BackoffUntil.Equal(t1.Add(backoff)) {
			t.Errorf("back-off until t1+%s, want t1+%s", s.BackoffUntil.Sub(t1), backoff)
		}

		// Healthy again within the back-off: standby, no candidacy until
		// the back-off ends, then the next term.
		time.Sleep(2 * time.Second)
		n.e.SetHealthy(true, "ok")
		s = waitState(t, n.e, time.Second, "standby", roleIs(lease.RoleStandby))
		if s.Reason != "candidacy back-off" {
			t.Errorf("standby reason %q", s.Reason)
		}
		s = waitState(t, n.e, backoff, "active again", roleIs(lease.RoleActive))
		if !s.Since.Equal(t1.Add(backoff)) || s.Term != 2 {
			t.Errorf("re-acquired term %d at t1+%s, want term 2 at t1+%s", s.Term, s.Since.Sub(t1), backoff)
		}
		if c := callsIn(n.lock, leasetest.Acquire, t1, t1.Add(backoff)); c != 0 {
			t.Errorf("%d Acquire calls during the back-off", c)
		}
	})
}

func TestStepDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := leasetest.NewStore()
		a := startNode(t, store, testConfig("a"))
		b := startNode(t, store, testConfig("b"))
		if err := a.e.StepDown("deploy"); !errors.Is(err, lease.ErrNotActive) {
			t.Errorf("StepDown before active = %v, want ErrNotActive", err)
		}
		a.e.SetHealthy(true, "ok")
		waitState(t, a.e, time.Second, "a active", roleIs(lease.RoleActive))
		b.e.SetHealthy(true, "ok")
		waitState(t, b.e, time.Second, "b standby", roleIs(lease.RoleStandby))
		if err := b.e.StepDown("deploy"); !errors.Is(err, lease.ErrNotActive) {
			t.Errorf("StepDown on a standby = %v, want ErrNotActive", err)
		}

		time.Sleep(1500 * time.Millisecond)
		ts := time.Now()
		if err := a.e.StepDown("deploy"); err != nil {
			t.Fatalf("StepDown: %v", err)
		}
		// On return: fenced off, released, backing off.
		if _, ok := a.e.Fence(); ok {
			t.Error("a fenced on after StepDown")
		}
		if c := a.lock.Count(leasetest.Release); c != 1 {
			t.Errorf("%d Release calls, want 1", c)
		}
		s := a.e.State()
		if s.Role != lease.RoleStandby || s.Reason != "step-down: deploy" || !s.BackoffUntil.Equal(ts.Add(backoff)) {
			t.Errorf("a after StepDown: %s (%s), back-off until ts+%s", s.Role, s.Reason, s.BackoffUntil.Sub(ts))
		}
		sb := waitState(t, b.e, retryInterval, "b active", roleIs(lease.RoleActive))
		if d := sb.Since.Sub(ts); d > retryInterval || sb.Term != 2 {
			t.Errorf("b active after %s with term %d", d, sb.Term)
		}

		time.Sleep(time.Minute)
		if c := callsIn(a.lock, leasetest.Acquire, ts, ts.Add(backoff)); c != 0 {
			t.Errorf("a made %d Acquire calls during the back-off", c)
		}
		s = a.e.State()
		if s.Role != lease.RoleStandby || !s.HolderKnown || s.Holder.Holder != "b" || s.Term != 2 {
			t.Errorf("a a minute later: %+v", s)
		}
		// No standby/candidate flapping after the back-off.
		want := []string{"unhealthy>candidate: no holder known", "candidate>active: lease acquired", "active>standby: step-down: deploy"}
		if got := transitions(t, a.logs); !equalStrings(got, want) {
			t.Errorf("a transitions:\n got %q\nwant %q", got, want)
		}
		if err := a.e.StepDown("again"); !errors.Is(err, lease.ErrNotActive) {
			t.Errorf("second StepDown = %v, want ErrNotActive", err)
		}
	})
}

// TestSeekFindsTheNewHolderSoon: after a step-down the old active is in its
// back-off and reads the holder record every RetryInterval; while Seek
// asks (a request waits to be forwarded), it learns of the new active
// within SeekInterval of its acquisition, whatever the phase of the two
// nodes' timers, then goes back to reading every RetryInterval.
func TestSeekFindsTheNewHolderSoon(t *testing.T) {
	for _, seek := range []bool{true, false} {
		worst := time.Duration(0)
		for _, phase := range []time.Duration{0, 250 * time.Millisecond, 500 * time.Millisecond, 750 * time.Millisecond} {
			synctest.Test(t, func(t *testing.T) {
				store := leasetest.NewStore()
				a, b, _ := activeAndStandby(t, store)
				time.Sleep(1500*time.Millisecond + phase)
				ts := time.Now()
				if err := a.e.StepDown("deploy"); err != nil {
					t.Fatal(err)
				}
				if seek {
					a.e.Seek(5 * time.Second)
				}
				sb := waitState(t, b.e, 2*retryInterval, "b active", roleIs(lease.RoleActive))
				waitState(t, a.e, 2*retryInterval, "a knows b", func(s lease.State) bool { return s.HolderKnown && s.Holder.Holder == "b" })
				knew := time.Now()
				worst = max(worst, knew.Sub(sb.Since))
				if !seek {
					return
				}
				// Once it knows, and after the window, it reads every
				// RetryInterval again.
				time.Sleep(10 * time.Second)
				if n := callsIn(a.lock, leasetest.Read, knew.Add(time.Millisecond), knew.Add(3*time.Second)); n > 3 {
					t.Errorf("%d reads in the 3s after a knew the holder, want <= 3", n)
				}
				if n := callsIn(a.lock, leasetest.Read, ts.Add(6*time.Second), ts.Add(10*time.Second)); n > 4 {
					t.Errorf("%d reads in 4s after the window, want <= 4", n)
				}
			})
		}
		t.Logf("seek=%v: the old active knew the new holder at worst %v after its acquisition", seek, worst)
		if seek && worst > lease.SeekInterval {
			t.Errorf("with Seek: %v, want <= SeekInterval (%v)", worst, lease.SeekInterval)
		}
		if !seek && worst <= lease.SeekInterval {
			t.Errorf("without Seek: %v; the test cannot tell Seek apart (want a phase where it takes longer than %v)", worst, lease.SeekInterval)
		}
	}
}

// TestSeekIsBoundedByTheHandover: with no active node at all (both nodes'
// backends down), requests that keep waiting make a node read every
// SeekInterval only for the lease duration after its demotion, then every
// RetryInterval again.
func TestSeekIsBoundedByTheHandover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := leasetest.NewStore()
		a := startNode(t, store, testConfig("a"))
		a.e.SetHealthy(true, "ok")
		waitState(t, a.e, time.Second, "a active", roleIs(lease.RoleActive))
		demoted := time.Now()
		a.e.SetHealthy(false, "down")
		waitState(t, a.e, time.Second, "a unhealthy", roleIs(lease.RoleUnhealthy))
		for range 600 { // a minute of waiting requests
			a.e.Seek(5 * time.Second)
			time.Sleep(100 * time.Millisecond)
		}
		early := callsIn(a.lock, leasetest.Read, demoted, demoted.Add(leaseDuration))
		late := callsIn(a.lock, leasetest.Read, demoted.Add(leaseDuration+time.Second), demoted.Add(time.Minute))
		t.Logf("reads: %d in the %v after the demotion, %d in the %v after that", early, leaseDuration, late, time.Minute-leaseDuration-time.Second)
		if early < int(leaseDuration/lease.SeekInterval)-5 {
			t.Errorf("%d reads during the handover, want about one per SeekInterval", early)
		}
		if perSecond := float64(late) / (time.Minute - leaseDuration - time.Second).Seconds(); perSecond > 1.1 {
			t.Errorf("%.2f reads/s after the handover, want one per RetryInterval", perSecond)
		}
	})
}

func TestMaintenance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := leasetest.NewStore()
		n := startNode(t, store, testConfig("a"))
		n.e.SetHealthy(true, "ok")
		waitState(t, n.e, time.Second, "active", roleIs(lease.RoleActive))
		time.Sleep(500 * time.Millisecond)

		t1 := time.Now()
		n.e.SetMaintenance(true)
		if _, ok := n.e.Fence(); ok {
			t.Fatal("fence on right after SetMaintenance(true)")
		}
		s := waitState(t, n.e, time.Second, "maintenance", roleIs(lease.RoleMaintenance))
		if s.Reason != "maintenance" || !s.Maintenance || !s.BackoffUntil.Equal(t1.Add(backoff)) {
			t.Errorf("maintenance state: %+v", s)
		}
		if c := n.lock.Count(leasetest.Release); c != 1 {
			t.Errorf("%d Release calls, want 1", c)
		}
		time.Sleep(time.Minute)
		if c := callsIn(n.lock, leasetest.Acquire, t1, time.Now()); c != 0 {
			t.Errorf("%d Acquire calls in maintenance", c)
		}
		if r := n.e.State().Role; r != lease.RoleMaintenance {
			t.Errorf("role %s in maintenance", r)
		}

		// Health wins over maintenance in the role shown.
		n.e.SetHealthy(false, "down")
		waitState(t, n.e, time.Second, "unhealthy", roleIs(lease.RoleUnhealthy))
		n.e.SetHealthy(true, "ok")
		waitState(t, n.e, time.Second, "maintenance", roleIs(lease.RoleMaintenance))

		t2 := time.Now()
		n.e.SetMaintenance(false)
		s = waitState(t, n.e, time.Second, "active", roleIs(lease.RoleActive))
		if !s.Since.Equal(t2) || s.Term != 2 {
			t.Errorf("active at t2+%s with term %d, want at once with term 2", s.Since.Sub(t2), s.Term)
		}
		want := []string{
			"unhealthy>candidate: no holder known",
			"candidate>active: lease acquired",
			"active>maintenance: maintenance",
			"maintenance>unhealthy: backend unhealthy: down",
			"unhealthy>maintenance: maintenance",
			"maintenance>candidate: no holder known",
			"candidate>active: lease acquired",
		}
		if got := transitions(t, n.logs); !equalStrings(got, want) {
			t.Errorf("transitions:\n got %q\nwant %q", got, want)
		}
	})
}

func TestTermIncrementsPerAcquisition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := leasetest.NewStore()
		nodes := []*node{startNode(t, store, testConfig("a")), startNode(t, store, testConfig("b"))}
		var grants []lease.Record
		store.OnGrant(func(rec lease.Record) { grants = append(grants, rec) })
		nodes[0].e.SetHealthy(true, "ok")
		waitState(t, nodes[0].e, time.Second, "a active", roleIs(lease.RoleActive))
		nodes[1].e.SetHealthy(true, "ok")
		for i := range 6 {
			cur, next := nodes[i%2], nodes[(i+1)%2]
			time.Sleep(backoff) // let the other node's back-off end
			if err := cur.e.StepDown("rotate"); err != nil {
				t.Fatalf("round %d: StepDown %s: %v", i, cur.name, err)
			}
			s := waitState(t, next.e, 2*retryInterval, next.name+" active", roleIs(lease.RoleActive))
			if want := uint64(i + 2); s.Term != want {
				t.Errorf("round %d: %s term %d, want %d", i, next.name, s.Term, want)
			}
			if term, ok := next.e.Fence(); !ok || term != s.Term {
				t.Errorf("round %d: Fence() = %d, %v", i, term, ok)
			}
		}
		synctest.Wait()
		if len(grants) != 7 {
			t.Fatalf("%d grants, want 7", len(grants))
		}
		for i, g := range grants {
			if g.Term != uint64(i+1) || g.Holder != nodes[i%2].name {
				t.Errorf("grant %d: %s term %d", i, g.Holder, g.Term)
			}
		}
	})
}

// TestFenceWithoutTheLoop is the request-path fencing test: the clock moves
// past the deadline while the election loop does not run, and Fence refuses
// at once.
func TestFenceWithoutTheLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var skew atomic.Int64
		cfg := testConfig("a")
		cfg.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
		n := startNode(t, leasetest.NewStore(), cfg)
		t0 := time.Now()
		n.e.SetHealthy(true, "ok")
		s := waitState(t, n.e, time.Second, "active", roleIs(lease.RoleActive))
		if !s.ValidUntil.Equal(t0.Add(renewDeadline)) {
			t.Fatalf("ValidUntil t0+%s", s.ValidUntil.Sub(t0))
		}
		synctest.Wait() // the loop is parked on its timers; bubble time stands still from here

		tests := []struct {
			skew time.Duration
			ok   bool
		}{
			{0, true},
			{renewDeadline - time.Nanosecond, true},
			{renewDeadline, false},
			{time.Hour, false}, // woke up from a long freeze
			{0, true},
		}
		for _, tc := range tests {
			skew.Store(int64(tc.skew))
			term, ok := n.e.Fence()
			if ok != tc.ok || (ok && term != 1) {
				t.Errorf("clock at t0+%s: Fence() = %d, %v; want ok=%v", tc.skew, term, ok, tc.ok)
			}
		}
		if !time.Now().Equal(t0) || n.e.State().Role != lease.RoleActive {
			t.Fatal("the loop ran during the check")
		}
		if allocs := testing.AllocsPerRun(100, func() { n.e.Fence() }); allocs != 0 {
			t.Errorf("Fence allocates %.1f times per call", allocs)
		}
	})
}

func TestLogsOnePerTransition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig("a")
		cfg.CandidacyBackoff = 0
		n := startNode(t, leasetest.NewStore(), cfg)
		n.lock.Set(leasetest.Acquire, leasetest.Fail(errors.New("dial tcp: connection refused")))
		t0 := time.Now()
		n.e.SetHealthy(true, "ok")
		time.Sleep(20*time.Second + time.Nanosecond)
		if c := callsIn(n.lock, leasetest.Acquire, t0, time.Now()); c != 21 {
			t.Errorf("%d Acquire attempts in 20s, want 21 (one per RetryInterval)", c)
		}
		s := n.e.State()
		if s.Role != lease.RoleCandidate || !strings.Contains(s.LastError, "connection refused") {
			t.Errorf("while storage fails: %s, LastError %q", s.Role, s.LastError)
		}
		n.lock.Set(leasetest.Acquire, leasetest.Pass())
		s = waitState(t, n.e, 2*retryInterval, "active", roleIs(lease.RoleActive))
		if s.LastError != "" {
			t.Errorf("LastError %q after success", s.LastError)
		}
		if err := n.e.StepDown("test"); err != nil {
			t.Fatal(err)
		}
		waitState(t, n.e, 2*retryInterval, "active again", roleIs(lease.RoleActive))
		n.e.Stop()

		want := []string{
			"unhealthy>candidate: no holder known",
			"candidate>active: lease acquired",
			"active>candidate: step-down: test",
			"candidate>active: lease acquired",
			"active>stopping: stopped",
		}
		if got := transitions(t, n.logs); !equalStrings(got, want) {
			t.Errorf("transitions:\n got %q\nwant %q", got, want)
		}
		var other []string
		for _, l := range n.logs.All() {
			if l.Message != "role changed" {
				other = append(other, l.Level.String()+" "+l.Message)
			}
		}
		if wantOther := []string{"warn lease storage error", "info lease storage recovered"}; !equalStrings(other, wantOther) {
			t.Errorf("other log lines:\n got %q\nwant %q", other, wantOther)
		}
	})
}

func TestConfigErrorKeepsTrying(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := startNode(t, leasetest.NewStore(), testConfig("a"))
		n.lock.Set(leasetest.Acquire, leasetest.Fail(fmt.Errorf("%w: authorization failure", lease.ErrConfig)))
		t0 := time.Now()
		n.e.SetHealthy(true, "ok")
		time.Sleep(10*time.Second + time.Nanosecond)
		if c := callsIn(n.lock, leasetest.Acquire, t0, time.Now()); c != 11 {
			t.Errorf("%d Acquire attempts in 10s, want 11", c)
		}
		s := n.e.State()
		if !strings.Contains(s.LastError, "authorization failure") || s.Role != lease.RoleCandidate {
			t.Errorf("state: %s, LastError %q", s.Role, s.LastError)
		}
		n.lock.Set(leasetest.Acquire, leasetest.Fail(fmt.Errorf("%w: container not found", lease.ErrConfig)))
		time.Sleep(10 * time.Second)
		var msgs []string
		for _, l := range n.logs.FilterMessage("lease storage misconfigured").All() {
			if l.Level != zapcore.ErrorLevel {
				t.Errorf("misconfiguration logged at %s", l.Level)
			}
			msgs = append(msgs, l.ContextMap()["error"].(string))
		}
		if len(msgs) != 2 || !strings.Contains(msgs[0], "authorization") || !strings.Contains(msgs[1], "container not found") {
			t.Errorf("misconfiguration logged %d times (%q), want once per distinct error", len(msgs), msgs)
		}
	})
}

// TestContention runs two electors on one store through partitions,
// step-downs, health flaps and a stop, with storage latency, and checks at
// every grant and every 10ms that at most one node's fence is on, and that
// a node whose fence is on is the holder the storage has.
func TestContention(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := leasetest.NewStore()
		a := startNode(t, store, testConfig("a"))
		b := startNode(t, store, testConfig("b"))
		nodes := []*node{a, b}
		for _, n := range nodes {
			n.lock.Set(leasetest.Acquire, leasetest.Delay(150*time.Millisecond))
			n.lock.Set(leasetest.Renew, leasetest.Delay(80*time.Millisecond))
			n.lock.Set(leasetest.Release, leasetest.Delay(50*time.Millisecond))
		}
		var grants atomic.Int64
		store.OnGrant(func(rec lease.Record) {
			grants.Add(1)
			for _, n := range nodes {
				if _, ok := n.e.Fence(); ok && n.name != rec.Holder {
					t.Errorf("lease granted to %s while %s's fence is on", rec.Holder, n.name)
				}
			}
		})

		var (
			wg      sync.WaitGroup
			samples atomic.Int64
			both    atomic.Int64
		)
		stop := make(chan struct{})
		t.Cleanup(func() {
			close(stop)
			wg.Wait()
		})
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				samples.Add(1)
				on := 0
				for _, n := range nodes {
					if _, ok := n.e.Fence(); ok {
						on++
						if rec, held := store.Holder(); !held || rec.Holder != n.name {
							t.Errorf("%s's fence is on but the store has %+v (valid %v)", n.name, rec, held)
						}
					}
				}
				if on > 1 {
					both.Add(1)
				}
			}
		})

		active := func(what string) *node {
			t.Helper()
			limit := time.After(time.Minute)
			for {
				for _, n := range nodes {
					if _, ok := n.e.Fence(); ok {
						return n
					}
				}
				select {
				case <-limit:
					t.Fatalf("%s: no active node within a minute", what)
				case <-time.After(10 * time.Millisecond):
				}
			}
		}
		other := func(n *node) *node {
			if n == a {
				return b
			}
			return a
		}

		a.e.SetHealthy(true, "ok")
		b.e.SetHealthy(true, "ok")
		cur := active("start")
		time.Sleep(7*time.Second + 300*time.Millisecond) // after two renews

		// Partition the active node from the storage.
		for _, op := range []leasetest.Op{leasetest.Acquire, leasetest.Renew, leasetest.Release, leasetest.Read} {
			cur.lock.Set(op, leasetest.Hang())
		}
		waitState(t, cur.e, time.Minute, "partitioned node demoted", roleIsNot(lease.RoleActive))
		next := waitState(t, other(cur).e, leaseDuration+2*retryInterval, "failover after partition", roleIs(lease.RoleActive))
		if next.Term != 2 {
			t.Errorf("term after partition failover: %d", next.Term)
		}
		cur.lock.Set(leasetest.Acquire, leasetest.Delay(150*time.Millisecond))
		cur.lock.Set(leasetest.Renew, leasetest.Delay(80*time.Millisecond))
		cur.lock.Set(leasetest.Release, leasetest.Pass())
		cur.lock.Set(leasetest.Read, leasetest.Pass())
		time.Sleep(2 * backoff)

		// Planned switchover.
		cur = active("before step-down")
		if err := cur.e.StepDown("switchover"); err != nil {
			t.Fatal(err)
		}
		waitState(t, other(cur).e, 2*retryInterval, "failover after step-down", roleIs(lease.RoleActive))
		time.Sleep(2 * backoff)

		// Health flap on the active node.
		cur = active("before health flap")
		cur.e.SetHealthy(false, "flap")
		time.Sleep(300 * time.Millisecond)
		cur.e.SetHealthy(true, "ok")
		waitState(t, other(cur).e, 2*retryInterval, "failover after health flap", roleIs(lease.RoleActive))
		time.Sleep(2 * backoff)

		// Both flap at once, then recover.
		a.e.SetHealthy(false, "flap")
		b.e.SetHealthy(false, "flap")
		time.Sleep(time.Second)
		a.e.SetHealthy(true, "ok")
		b.e.SetHealthy(true, "ok")
		active("after double flap")
		time.Sleep(2 * backoff)

		// Stop the active node.
		cur = active("before stop")
		cur.e.Stop()
		waitState(t, other(cur).e, 2*retryInterval, "failover after stop", roleIs(lease.RoleActive))
		time.Sleep(10 * time.Second)

		if n := both.Load(); n != 0 {
			t.Errorf("two fences on in %d of %d samples", n, samples.Load())
		}
		if g := grants.Load(); g < 5 {
			t.Errorf("only %d grants: the scenario did not exercise failover", g)
		}
		rec, _ := store.Holder()
		if uint64(grants.Load()) != rec.Term {
			t.Errorf("%d grants but term %d", grants.Load(), rec.Term)
		}
	})
}

func TestChanged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := startNode(t, leasetest.NewStore(), testConfig("a"))
		synctest.Wait()
		ch := n.e.Changed()
		select {
		case <-ch:
			t.Fatal("Changed closed without a change")
		default:
		}
		n.e.SetHealthy(true, "ok")
		select {
		case <-ch:
		default:
			t.Fatal("Changed not closed by SetHealthy")
		}
		if !n.e.State().Healthy {
			t.Error("State().Healthy false after SetHealthy(true)")
		}
		// Nobody reading never blocks the elector.
		time.Sleep(time.Minute)
		if r := n.e.State().Role; r != lease.RoleActive {
			t.Errorf("role %s", r)
		}
	})
}

func TestStopAndStart(t *testing.T) {
	t.Run("stop without start", func(t *testing.T) {
		e, err := lease.NewElector(leasetest.NewStore().NewLock("a"), testConfig("a"), zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		e.Stop()
		e.Stop()
		e.Start(t.Context()) // after Stop: does nothing
		if r := e.State().Role; r != lease.RoleStopping {
			t.Errorf("role %s", r)
		}
	})
	t.Run("concurrent stops", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := startNode(t, leasetest.NewStore(), testConfig("a"))
			n.e.SetHealthy(true, "ok")
			waitState(t, n.e, time.Second, "active", roleIs(lease.RoleActive))
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(n.e.Stop)
			}
			wg.Wait()
			if c := n.lock.Count(leasetest.Release); c != 1 {
				t.Errorf("%d Release calls", c)
			}
			want := []string{"unhealthy>candidate: no holder known", "candidate>active: lease acquired", "active>stopping: stopped"}
			if got := transitions(t, n.logs); !equalStrings(got, want) {
				t.Errorf("transitions:\n got %q\nwant %q", got, want)
			}
		})
	})
	t.Run("context cancel", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			store := leasetest.NewStore()
			e, err := lease.NewElector(store.NewLock("a"), testConfig("a"), zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			e.Start(ctx)
			e.SetHealthy(true, "ok")
			waitState(t, e, time.Second, "active", roleIs(lease.RoleActive))
			cancel()
			waitState(t, e, time.Second, "stopping", roleIs(lease.RoleStopping))
			e.Stop()
			if _, ok := store.Holder(); ok {
				t.Error("lease held after the context ended")
			}
		})
	})
	t.Run("release bounded by ReleaseTimeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cfg := testConfig("a")
			cfg.ReleaseTimeout = 500 * time.Millisecond
			n := startNode(t, leasetest.NewStore(), cfg)
			n.e.SetHealthy(true, "ok")
			waitState(t, n.e, time.Second, "active", roleIs(lease.RoleActive))
			n.lock.Set(leasetest.Release, leasetest.Hang())
			t1 := time.Now()
			n.e.Stop()
			if d := time.Since(t1); d != cfg.ReleaseTimeout {
				t.Errorf("Stop took %s with a hanging release, want %s", d, cfg.ReleaseTimeout)
			}
		})
	})
	t.Run("stop while standby does not release", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			store := leasetest.NewStore()
			h := startNode(t, store, testConfig("h"))
			h.e.SetHealthy(true, "ok")
			waitState(t, h.e, time.Second, "active", roleIs(lease.RoleActive))
			n := startNode(t, store, testConfig("a"))
			n.lock.Script(t, leasetest.Step{Op: leasetest.Acquire})
			n.e.SetHealthy(true, "ok")
			synctest.Wait()
			if r := n.e.State().Role; r != lease.RoleStandby {
				t.Errorf("role %s, want standby", r)
			}
			n.e.Stop()
			if r := n.lock.Remaining(); r != 0 {
				t.Errorf("%d scripted calls not made", r)
			}
		})
	})
}

func BenchmarkFence(b *testing.B) {
	e, err := lease.NewElector(leasetest.NewStore().NewLock("a"), testConfig("a"), zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	e.Start(b.Context())
	defer e.Stop()
	e.SetHealthy(true, "ok")
	for {
		s, ch := e.Watch()
		if s.Role == lease.RoleActive {
			break
		}
		<-ch
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := e.Fence(); !ok {
				b.Error("fence off")
				return
			}
		}
	})
}

func TestEligibilityChangeDuringAcquire(t *testing.T) {
	t.Run("hanging acquire is cancelled", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := startNode(t, leasetest.NewStore(), testConfig("a"))
			n.lock.Set(leasetest.Acquire, leasetest.Hang())
			n.e.SetHealthy(true, "ok")
			time.Sleep(500 * time.Millisecond)
			t1 := time.Now()
			n.e.SetHealthy(false, "down")
			synctest.Wait()
			calls := n.lock.Calls()
			if c := n.lock.Count(leasetest.Acquire); c != 1 {
				t.Fatalf("%d Acquire calls", c)
			}
			for _, c := range calls {
				if c.Op == leasetest.Acquire && !c.End.Equal(t1) {
					t.Errorf("acquire ended at t1+%s, want cancelled at once", c.End.Sub(t1))
				}
			}
			if r := n.e.State().Role; r != lease.RoleUnhealthy {
				t.Errorf("role %s", r)
			}
		})
	})
	t.Run("granted while turning unhealthy", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			store := leasetest.NewStore()
			core, logs := observer.New(zapcore.InfoLevel)
			l := &racyLock{Lock: store.NewLock("a")}
			e, err := lease.NewElector(l, testConfig("a"), zap.New(core))
			if err != nil {
				t.Fatal(err)
			}
			l.e = e
			e.Start(t.Context())
			t.Cleanup(e.Stop)
			var fenceOn atomic.Bool
			store.OnGrant(func(lease.Record) {
				if _, ok := e.Fence(); ok {
					fenceOn.Store(true)
				}
			})
			e.SetHealthy(true, "ok")
			synctest.Wait()
			if fenceOn.Load() {
				t.Error("fence on")
			}
			if _, ok := store.Holder(); ok {
				t.Error("lease kept after becoming unhealthy during the acquire")
			}
			if c := l.Count(leasetest.Release); c != 1 {
				t.Errorf("%d Release calls, want 1", c)
			}
			want := []string{"unhealthy>candidate: no holder known", "candidate>unhealthy: backend unhealthy: flap"}
			if got := transitions(t, logs); !equalStrings(got, want) {
				t.Errorf("transitions:\n got %q\nwant %q", got, want)
			}
		})
	})
}

// racyLock reports the backend unhealthy while the storage grants the lease.
type racyLock struct {
	*leasetest.Lock
	e    *lease.Elector
	once sync.Once
}

func (l *racyLock) Acquire(ctx context.Context, self lease.Record, d time.Duration) (lease.Record, error) {
	rec, err := l.Lock.Acquire(ctx, self, d)
	l.once.Do(func() { l.e.SetHealthy(false, "flap") })
	return rec, err
}

// TestLeave: the first step of a process stop releases at once and keeps
// following the holder, so the stopping node can forward to the new active,
// and it never competes again.
func TestLeave(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := leasetest.NewStore()
		a, b, _ := activeAndStandby(t, store)

		time.Sleep(1500 * time.Millisecond)
		ts := time.Now()
		a.e.Leave("stopping on signal")
		if _, ok := a.e.Fence(); ok {
			t.Error("a fenced on after Leave")
		}
		if c := a.lock.Count(leasetest.Release); c != 1 {
			t.Errorf("%d Release calls, want 1", c)
		}
		s := a.e.State()
		if s.Role != lease.RoleStopping || s.Reason != "stopping on signal" {
			t.Errorf("a after Leave: %s (%s)", s.Role, s.Reason)
		}
		waitState(t, b.e, retryInterval, "b active", roleIs(lease.RoleActive))
		// a learns the new holder within a retry interval or so.
		sa := waitState(t, a.e, 2*retryInterval, "a knows b", func(s lease.State) bool {
			return s.HolderKnown && s.Holder.Holder == "b"
		})
		if sa.Role != lease.RoleStopping {
			t.Errorf("a role %s after Leave, want stopping", sa.Role)
		}
		a.e.Leave("again") // idempotent
		time.Sleep(time.Minute)
		if c := callsIn(a.lock, leasetest.Acquire, ts, time.Now()); c != 0 {
			t.Errorf("a made %d Acquire calls after Leave", c)
		}
		if _, ok := a.e.Fence(); ok {
			t.Error("a active again after Leave")
		}
	})
}

func TestEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var kinds []lease.EventKind
		var demoted string
		cfg := testConfig("a")
		cfg.OnEvent = func(ev lease.Event) {
			mu.Lock()
			defer mu.Unlock()
			kinds = append(kinds, ev.Kind)
			if ev.Kind == lease.EventDemoted {
				demoted = ev.Reason
			}
		}
		store := leasetest.NewStore()
		a := startNode(t, store, cfg)
		a.e.SetHealthy(true, "ok")
		waitState(t, a.e, time.Second, "a active", roleIs(lease.RoleActive))
		time.Sleep(2*cfg.RenewInterval + time.Millisecond)
		a.lock.Set(leasetest.Renew, leasetest.Fail(errors.New("boom")))
		time.Sleep(cfg.RenewInterval)
		if err := a.e.StepDown("deploy"); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		count := map[lease.EventKind]int{}
		for _, k := range kinds {
			count[k]++
		}
		if kinds[0] != lease.EventAcquired || count[lease.EventRenewed] < 2 || count[lease.EventRenewFailed] < 1 ||
			kinds[len(kinds)-1] != lease.EventDemoted || demoted != "step-down: deploy" {
			t.Errorf("events %v (demoted %q)", kinds, demoted)
		}
	})
}

// TestOnStateSeesEveryPublishedState: Config.OnState is handed the state
// as it is after each change (the node's role owner keeps only what it is
// handed), so after any sequence the last state handed over equals State():
// through an acquisition, a standby learning the holder, a step-down and
// the other node's acquisition.
func TestOnStateSeesEveryPublishedState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := leasetest.NewStore()
		type seen struct {
			mu   sync.Mutex
			last lease.State
			n    int
		}
		start := func(name string) (*node, *seen) {
			s := &seen{}
			cfg := testConfig(name)
			cfg.OnState = func(st lease.State) {
				s.mu.Lock()
				s.last, s.n = st, s.n+1
				s.mu.Unlock()
			}
			return startNode(t, store, cfg), s
		}
		check := func(n *node, s *seen, when string) {
			t.Helper()
			synctest.Wait()
			s.mu.Lock()
			defer s.mu.Unlock()
			st := n.e.State()
			if s.n == 0 || s.last.Role != st.Role || s.last.Term != st.Term || s.last.HolderKnown != st.HolderKnown ||
				s.last.Holder.Holder != st.Holder.Holder || s.last.Reason != st.Reason {
				t.Errorf("%s, %s: OnState last had %s term %d holder %q (known %v) %q; State() is %s term %d holder %q (known %v) %q",
					when, n.name, s.last.Role, s.last.Term, s.last.Holder.Holder, s.last.HolderKnown, s.last.Reason,
					st.Role, st.Term, st.Holder.Holder, st.HolderKnown, st.Reason)
			}
		}
		a, sa := start("a")
		b, sb := start("b")
		a.e.SetHealthy(true, "ok")
		waitState(t, a.e, time.Second, "a active", roleIs(lease.RoleActive))
		b.e.SetHealthy(true, "ok")
		waitState(t, b.e, 2*time.Second, "b standby", roleIs(lease.RoleStandby))
		check(a, sa, "a active")
		check(b, sb, "b standby")
		if err := a.e.StepDown("test"); err != nil {
			t.Fatal(err)
		}
		waitState(t, b.e, 5*time.Second, "b active", roleIs(lease.RoleActive))
		waitState(t, a.e, 5*time.Second, "a sees b", func(s lease.State) bool { return s.HolderKnown && s.Holder.Holder == "b" })
		check(a, sa, "after the step-down")
		check(b, sb, "b active")
	})
}
