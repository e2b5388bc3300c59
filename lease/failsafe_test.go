package lease_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/batonproxy/baton/lease"
	"github.com/batonproxy/baton/lease/leasetest"
)

var errStorage = errors.New("storage unreachable (test)")

// linkedPair starts a and b with failsafe over a fake link whose state
// linkUp controls; a is active, b a standby.
func linkedPair(t *testing.T, store *leasetest.Store, linkUp *atomic.Bool, bOpts ...func(*lease.Config)) (a, b *node) {
	t.Helper()
	var na, nb *node
	cfg := func(name string, peer **node) lease.Config {
		c := testConfig(name)
		var round atomic.Uint64 // as package peer numbers them
		c.Failsafe = func(ctx context.Context, window time.Duration) bool {
			r := round.Add(1)
			if !linkUp.Load() || *peer == nil {
				<-ctx.Done() // a link that is down answers nothing
				return false
			}
			_, err := (*peer).e.Promise(name, r, window)
			return err == nil
		}
		c.Withdraw = func() {
			if linkUp.Load() && *peer != nil {
				(*peer).e.Withdraw(name, round.Load())
			}
		}
		return c
	}
	na = startNodeOn(t, store.NewLock("a"), cfg("a", &nb))
	na.e.SetHealthy(true, "ok")
	waitState(t, na.e, time.Second, "a active", roleIs(lease.RoleActive))
	cb := cfg("b", &na)
	for _, f := range bOpts {
		f(&cb)
	}
	nb = startNodeOn(t, store.NewLock("b"), cb)
	nb.e.SetHealthy(true, "ok")
	waitState(t, nb.e, 2*time.Second, "b standby", roleIs(lease.RoleStandby))
	return na, nb
}

// failsafePair starts a linked pair with failsafe (see linkedPair), fails
// the test if two fences are ever on together (sampled, and at every
// grant), and returns the store and the link switch.
func failsafePair(t *testing.T) (a, b *node, store *leasetest.Store, up *atomic.Bool) {
	t.Helper()
	store = leasetest.NewStore()
	up = new(atomic.Bool)
	up.Store(true)
	neverTwoActive(t, store, &a, &b)
	a, b = linkedPair(t, store, up)
	t.Cleanup(watchFences(t, a, b))
	return a, b, store, up
}

// storage makes n's storage calls fail (down) or pass.
func storage(n *node, up bool) {
	a := leasetest.Pass()
	if !up {
		a = leasetest.Fail(errStorage)
	}
	for _, op := range []leasetest.Op{leasetest.Acquire, leasetest.Renew, leasetest.Release, leasetest.Read} {
		n.lock.Set(op, a)
	}
}

// watchFences samples both fences every 10 ms (bubble time) and fails the
// test the first time both are on.
func watchFences(t *testing.T, a, b *node) (stop func()) {
	done := make(chan struct{})
	go func() {
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		reported := false
		for {
			select {
			case <-done:
				return
			case <-tk.C:
			}
			_, ona := a.e.Fence()
			_, onb := b.e.Fence()
			if ona && onb && !reported {
				reported = true
				t.Errorf("both fences on at %s", time.Now().Format(time.StampMilli))
			}
		}
	}()
	return func() { close(done) }
}

func TestFailsafeServesThroughAStorageOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, _, _ := failsafePair(t)
		term := a.e.State().Term
		out := time.Now()
		storage(a, false)
		storage(b, false)
		time.Sleep(time.Minute)
		sa := a.e.State()
		if _, on := a.e.Fence(); !on || !sa.Failsafe || sa.Term != term {
			t.Fatalf("a after a minute without storage: fence %v, %+v", on, sa)
		}
		if sb := b.e.State(); sb.PromisedTo != "a" || sb.Role != lease.RoleStandby {
			t.Errorf("b: promised to %q, %s", sb.PromisedTo, sb.Role)
		}
		storage(a, true)
		storage(b, true)
		sa = waitState(t, a.e, 2*renewInterval, "a out of failsafe", func(s lease.State) bool { return !s.Failsafe })
		if sa.Role != lease.RoleActive || sa.Term != term {
			t.Errorf("a after the outage: %s term %d, want active %d (no switchover)", sa.Role, sa.Term, term)
		}
		if sb := b.e.State(); sb.PromisedTo != "" {
			t.Errorf("b's promise not withdrawn: %+v", sb)
		}
		if n := len(a.logs.FilterMessage("failsafe: serving on the peers' promises while the storage does not answer").All()); n != 1 {
			t.Errorf("failsafe entry logged %d times, want once", n)
		}
		t.Logf("an outage of %s survived without a switchover", time.Since(out).Round(time.Second))
	})
}

// TestFailsafePartitionOfTheActiveAlone: only the active loses the
// storage; the standby, whose storage works, must not acquire while its
// promise holds.
func TestFailsafePartitionOfTheActiveAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, store, _ := failsafePair(t)
		storage(a, false)
		time.Sleep(time.Minute)
		if _, on := a.e.Fence(); !on {
			t.Fatal("a lost its fence while every peer promised")
		}
		if _, held := store.Holder(); held {
			t.Errorf("the lease was taken: %+v", b.e.State())
		}
		storage(a, true)
		waitState(t, a.e, 2*renewInterval, "a renewed", func(s lease.State) bool { return !s.Failsafe && s.Role == lease.RoleActive })
	})
}

// TestFailsafeNeedsThePeers: storage and link down together: the active
// demotes at its deadline, as without failsafe.
func TestFailsafeNeedsThePeers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, _, up := failsafePair(t)
		last := a.e.State().LastRenew
		up.Store(false)
		storage(a, false)
		storage(b, false)
		s := waitState(t, a.e, renewDeadline+time.Second, "a demoted", roleIsNot(lease.RoleActive))
		if d := s.Since.Sub(last); d > renewDeadline {
			t.Errorf("a demoted %s after its last renew, want <= %s", d, renewDeadline)
		}
		if s.Failsafe {
			t.Error("failsafe without promises")
		}
	})
}

// TestFailsafeRandomFaults drives random sequences of storage failures (of
// each node), link failures and recoveries, and checks at every 10 ms that
// at most one fence is on (and, at every grant, that no other node is
// fenced on).
func TestFailsafeRandomFaults(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 42))
				store := leasetest.NewStore()
				var up atomic.Bool
				up.Store(true)
				var a, b *node
				neverTwoActive(t, store, &a, &b)
				a, b = linkedPair(t, store, &up)
				stop := watchFences(t, a, b)
				defer stop()
				for range 60 {
					switch rng.IntN(5) {
					case 0:
						storage(a, rng.IntN(2) == 0)
					case 1:
						storage(b, rng.IntN(2) == 0)
					case 2:
						up.Store(rng.IntN(2) == 0)
					case 3:
						a.e.SetHealthy(rng.IntN(4) != 0, "random")
					case 4:
						b.e.SetHealthy(rng.IntN(4) != 0, "random")
					}
					time.Sleep(time.Duration(rng.IntN(20000)) * time.Millisecond)
				}
				// Everything back: exactly one node ends up active.
				storage(a, true)
				storage(b, true)
				up.Store(true)
				a.e.SetHealthy(true, "ok")
				b.e.SetHealthy(true, "ok")
				time.Sleep(2 * leaseDuration)
				_, ona := a.e.Fence()
				_, onb := b.e.Fence()
				if ona == onb {
					t.Errorf("after recovery: a fenced %v, b fenced %v, want exactly one", ona, onb)
				}
			})
		})
	}
}

// TestFailsafeLatePromiseExtendsNothing: promises that arrive after the
// round's bound (a slow link) extend nothing: the active demotes at its
// deadline.
func TestFailsafeLatePromiseExtendsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := leasetest.NewStore()
		cfg := testConfig("a")
		var asked atomic.Int64
		cfg.Failsafe = func(ctx context.Context, window time.Duration) bool {
			asked.Add(1)
			<-ctx.Done()
			time.Sleep(10 * time.Millisecond) // the answer comes, too late
			return true
		}
		a := startNodeOn(t, store.NewLock("a"), cfg)
		a.e.SetHealthy(true, "ok")
		waitState(t, a.e, time.Second, "a active", roleIs(lease.RoleActive))
		last := a.e.State().LastRenew
		storage(a, false)
		s := waitState(t, a.e, renewDeadline+time.Second, "a demoted", roleIsNot(lease.RoleActive))
		if d := s.Since.Sub(last); d > renewDeadline || s.Failsafe || asked.Load() == 0 {
			t.Errorf("a demoted %s after its last renew (want <= %s), failsafe %v, %d rounds", d, renewDeadline, s.Failsafe, asked.Load())
		}
	})
}

// TestFailsafePeerClockAtTheRateLimit: the peer's clock runs fast, 1.45
// times real time, just inside the margin the lease allows (a promise of
// Duration 15s lasts 10.3s of real time, the active serves RenewDeadline
// 10s past the promise round's send time). Only the active is cut off from
// the storage; then the link goes down too, so the last promise lapses
// while the peer's own storage works. The peer must not serve before the
// active's fence is off.
func TestFailsafePeerClockAtTheRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := leasetest.NewStore()
		var up atomic.Bool
		up.Store(true)
		var a, b *node
		neverTwoActive(t, store, &a, &b)
		base := time.Now()
		fast := func() time.Time { return base.Add(time.Duration(float64(time.Since(base)) * 1.45)) }
		a, b = linkedPair(t, store, &up, func(c *lease.Config) { c.Now = fast })
		t.Cleanup(watchFences(t, a, b))
		storage(a, false)
		time.Sleep(30 * time.Second) // in failsafe on b's promises
		if !a.e.State().Failsafe {
			t.Fatal("a is not in failsafe")
		}
		up.Store(false)
		sb := waitState(t, b.e, 2*leaseDuration, "b active after the last promise lapsed", roleIs(lease.RoleActive))
		sa := a.e.State()
		if sa.Role == lease.RoleActive || sa.Since.After(sb.Since) {
			t.Errorf("a left the active role at %s, b became active at %s", sa.Since.Format(time.StampMilli), sb.Since.Format(time.StampMilli))
		}
	})
}

// TestWithdrawRounds: a withdraw voids promises of its round and earlier
// only. One that arrives after a newer promise (the messages of one node
// may overtake each other) leaves that promise binding; a promise of a
// round already withdrawn is refused. Unnumbered (0) withdraws void all.
func TestWithdrawRounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := startNodeOn(t, leasetest.NewStore().NewLock("b"), testConfig("b"))
		promised := func() string { return n.e.State().PromisedTo }

		if _, err := n.e.Promise("a", 2, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		n.e.Withdraw("a", 1) // round 1's withdraw, late
		if promised() != "a" {
			t.Fatal("a withdraw of round 1 voided the promise of round 2")
		}
		n.e.Withdraw("z", 5) // another node's withdraw
		if promised() != "a" {
			t.Fatal("another node's withdraw voided the promise to a")
		}
		n.e.Withdraw("a", 2)
		if promised() != "" {
			t.Fatal("the withdraw of round 2 left the promise binding")
		}
		if _, err := n.e.Promise("a", 2, 10*time.Second); !errors.Is(err, lease.ErrPromiseStale) {
			t.Fatalf("a promise of a withdrawn round: %v, want ErrPromiseStale", err)
		}
		if _, err := n.e.Promise("a", 3, 10*time.Second); err != nil || promised() != "a" {
			t.Fatalf("round 3: %v, promised to %q", err, promised())
		}
		n.e.Withdraw("a", 0)
		if promised() != "" {
			t.Fatal("an unnumbered withdraw left the promise binding")
		}
	})
}
