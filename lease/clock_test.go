package lease_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/batonproxy/baton/lease"
	"github.com/batonproxy/baton/lease/leasetest"
)

// testWall is a wall clock a test can move apart from the bubble's clock
// (which stands for the monotonic one): by an offset, or frozen.
type testWall struct {
	mu     sync.Mutex
	offset time.Duration
	frozen *int64
}

func (w *testWall) now() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.frozen != nil {
		return *w.frozen
	}
	return time.Now().Add(w.offset).UnixNano()
}

func (w *testWall) jump(d time.Duration) { w.mu.Lock(); w.offset += d; w.mu.Unlock() }

// freeze stops the wall clock; thaw lets it run again from where it stood
// (a wall clock left behind: the detector sees no jump, the fence keeps
// to the earlier of its two deadlines).
func (w *testWall) freeze() {
	w.mu.Lock()
	v := time.Now().Add(w.offset).UnixNano()
	w.frozen = &v
	w.mu.Unlock()
}

func (w *testWall) thaw() {
	w.mu.Lock()
	w.offset = time.Duration(*w.frozen - time.Now().UnixNano())
	w.frozen = nil
	w.mu.Unlock()
}

func clockNode(t *testing.T, w *testWall, jumps *atomic.Int32) (*node, *leasetest.Store) {
	store := leasetest.NewStore()
	cfg := testConfig("a")
	cfg.Wall = w.now
	cfg.OnEvent = func(ev lease.Event) {
		if ev.Kind == lease.EventClockJump {
			jumps.Add(1)
		}
	}
	n := startNodeOn(t, store.NewLock("a"), cfg)
	n.e.SetHealthy(true, "ok")
	waitState(t, n.e, time.Second, "a active", roleIs(lease.RoleActive))
	return n, store
}

// TestFenceNeedsTheWallClockToo: a VM that resumes from a pause with a
// monotonic clock that stood still and a wall clock synchronized forward
// (here: the wall clock jumps 30 s while the bubble's clock does not move)
// serves nothing at once, on the very next Fence call, whatever the
// detector does; it serves again once a renew sent after the jump
// succeeded.
func TestFenceNeedsTheWallClockToo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &testWall{}
		var jumps atomic.Int32
		n, _ := clockNode(t, w, &jumps)
		if _, ok := n.e.Fence(); !ok {
			t.Fatal("active node fenced off before any jump")
		}
		renews := n.lock.Count(leasetest.Renew)
		w.jump(30 * time.Second) // past the 10 s renew deadline on the wall clock
		if _, ok := n.e.Fence(); ok {
			t.Fatal("the fence stayed on after the wall clock passed the deadline")
		}
		// The detector notices, and the node renews at once.
		time.Sleep(time.Second)
		synctest.Wait()
		if jumps.Load() == 0 {
			t.Error("the clock jump was not reported")
		}
		if n.lock.Count(leasetest.Renew) == renews {
			t.Fatal("no renew after the jump")
		}
		if _, ok := n.e.Fence(); !ok {
			t.Fatalf("not serving after a renew sent after the jump: %+v", n.e.State())
		}
	})
}

// TestDetectorCatchesAMonotonicJump: the reverse disagreement (Now jumps
// 5 s ahead while the wall clock does not; the deadline is still ahead on
// both) is caught by the detector: the fence goes off within a tick, a
// renew that was in flight across the jump does not turn it back on, and
// one sent after it does.
func TestDetectorCatchesAMonotonicJump(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var monoOff atomic.Int64
		var jumps atomic.Int32
		store := leasetest.NewStore()
		cfg := testConfig("a")
		cfg.Now = func() time.Time { return time.Now().Add(time.Duration(monoOff.Load())) }
		cfg.Wall = func() int64 { return time.Now().UnixNano() }
		cfg.OnEvent = func(ev lease.Event) {
			if ev.Kind == lease.EventClockJump {
				jumps.Add(1)
			}
		}
		n := startNodeOn(t, store.NewLock("a"), cfg)
		n.e.SetHealthy(true, "ok")
		waitState(t, n.e, time.Second, "a active", roleIs(lease.RoleActive))
		time.Sleep(renewInterval + 100*time.Millisecond) // a renew went out and came back
		synctest.Wait()
		// Renews take 2 s from now on, so one is in flight across the jump.
		n.lock.Set(leasetest.Renew, leasetest.Delay(2*time.Second))
		time.Sleep(renewInterval - 100*time.Millisecond + 600*time.Millisecond) // the next renew started 0.6 s ago
		monoOff.Add(int64(5 * time.Second))
		jumpAt := time.Now()
		if _, ok := n.e.Fence(); !ok {
			t.Fatal("fenced off by the jump alone: the deadline is still ahead on both clocks")
		}
		time.Sleep(300 * time.Millisecond) // a detector tick
		synctest.Wait()
		if _, ok := n.e.Fence(); ok || jumps.Load() == 0 {
			t.Fatalf("fence still on a tick after the clocks disagreed by 5 s (jumps %d)", jumps.Load())
		}
		jumpedAt := time.Now()
		for {
			synctest.Wait()
			if _, ok := n.e.Fence(); ok {
				break
			}
			if time.Since(jumpedAt) > 8*time.Second {
				t.Fatalf("never served again: %+v", n.e.State())
			}
			time.Sleep(100 * time.Millisecond)
		}
		// The renew in flight (sent before the jump) did not count: the
		// fence came back with a renew that started after the jump.
		confirmed := false
		for _, c := range n.lock.Calls() {
			if c.Op == leasetest.Renew && c.Err == nil && !c.End.IsZero() && c.Start.After(jumpAt) && !c.End.After(time.Now()) {
				confirmed = true
			}
		}
		if !confirmed {
			t.Errorf("serving again %v after the detection without a renew started after the jump: %+v", time.Since(jumpedAt), n.lock.Calls())
		}
		var before bool
		for _, c := range n.lock.Calls() {
			if c.Op == leasetest.Renew && c.Start.Before(jumpAt) && c.End.After(jumpAt) {
				before = true
			}
		}
		if !before {
			t.Error("no renew was in flight across the jump: the test did not try what it means to")
		}
		if rec, ok := store.Holder(); !ok || rec.Holder != "a" {
			t.Errorf("holder %+v %v", rec, ok)
		}
	})
}

// TestNoDetectorWithNegativeClockJump: ClockJump < 0 turns the detector
// off (the fence still checks both clocks).
func TestNoDetectorWithNegativeClockJump(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &testWall{}
		store := leasetest.NewStore()
		cfg := testConfig("a")
		cfg.Wall = w.now
		cfg.ClockJump = -1
		n := startNodeOn(t, store.NewLock("a"), cfg)
		n.e.SetHealthy(true, "ok")
		waitState(t, n.e, time.Second, "a active", roleIs(lease.RoleActive))
		w.freeze()
		time.Sleep(3 * time.Second)
		if _, ok := n.e.Fence(); !ok {
			t.Error("fenced off with the detector off and the wall deadline ahead")
		}
		w.thaw()
	})
}
