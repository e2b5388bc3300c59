package lease_test

import (
	"context"
	"errors"
	"fmt"
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

// ids is a fake IDStore: Retire hands out "<prefix>-1", "<prefix>-2", ...
// and records, with the lock's call count at that moment, when it ran.
type ids struct {
	mu      sync.Mutex
	lock    *leasetest.Lock
	prefix  string
	n       int
	fail    error
	retired []string // the old IDs, in order
	before  []int    // len(lock.Calls()) at each Retire
}

func (s *ids) Retire(old string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return "", s.fail
	}
	s.n++
	s.retired = append(s.retired, old)
	s.before = append(s.before, len(s.lock.Calls()))
	return fmt.Sprintf("%s-%d", s.prefix, s.n), nil
}

// startNodeOn starts an Elector on the given lock (see startNode).
func startNodeOn(t *testing.T, lock *leasetest.Lock, cfg lease.Config) *node {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	e, err := lease.NewElector(lock, cfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	e.Start(t.Context())
	t.Cleanup(e.Stop)
	synctest.Wait()
	return &node{name: cfg.NodeName, e: e, lock: lock, logs: logs}
}

// neverTwoActive fails the test if, at any grant of the lease, another of
// the nodes still has its fence on.
func neverTwoActive(t *testing.T, store *leasetest.Store, nodes ...**node) {
	store.OnGrant(func(rec lease.Record) {
		for _, n := range nodes {
			if *n == nil || (*n).name == rec.Holder {
				continue
			}
			if _, on := (*n).e.Fence(); on {
				t.Errorf("lease granted to %s (term %d) while %s is still fenced on", rec.Holder, rec.Term, (*n).name)
			}
		}
	})
}

// crashedHolder leaves the lease held under id by "a", as a process killed
// with SIGKILL does.
func crashedHolder(t *testing.T, store *leasetest.Store, id string) lease.Record {
	t.Helper()
	rec, err := store.NewLockID("a", id).Acquire(t.Context(), lease.Record{Holder: "a", AdvertiseURL: "http://a:80"}, leaseDuration)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestTakeoverAfterCrashWhenHealthy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := leasetest.NewStore()
		var a, b *node
		neverTwoActive(t, store, &a, &b)
		old := crashedHolder(t, store, "a-id")
		b = startNode(t, store, testConfig("b"))
		b.e.SetHealthy(true, "ok")
		waitState(t, b.e, time.Second, "b standby", roleIs(lease.RoleStandby))

		time.Sleep(2 * time.Second) // systemd restarts a
		cfg := testConfig("a")
		cfg.Inherited, cfg.InheritGrace = true, 5*time.Second
		a = startNodeOn(t, store.NewLockID("a", "a-id"), cfg)
		ts := time.Now()
		a.e.SetHealthy(true, "ok")
		s := waitState(t, a.e, time.Millisecond, "a active again", roleIs(lease.RoleActive))
		if s.Term != old.Term+1 || s.Reason != "lease taken over from this node's previous process" || !s.Since.Equal(ts) {
			t.Errorf("a after restart: term %d (want %d), reason %q, after %s", s.Term, old.Term+1, s.Reason, s.Since.Sub(ts))
		}
		time.Sleep(time.Minute)
		if r := b.e.State().Role; r != lease.RoleStandby {
			t.Errorf("b is %s, want standby", r)
		}
		if _, on := a.e.Fence(); !on {
			t.Error("a lost the lease it took over")
		}
	})
}

func TestTakeoverAfterCrashWhenUnhealthyReleases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := leasetest.NewStore()
		var a, b *node
		neverTwoActive(t, store, &a, &b)
		crashedHolder(t, store, "a-id")
		b = startNode(t, store, testConfig("b"))
		b.e.SetHealthy(true, "ok")
		time.Sleep(2 * time.Second)

		cfg := testConfig("a")
		cfg.Inherited, cfg.InheritGrace = true, 3*time.Second
		lock := store.NewLockID("a", "a-id")
		idStore := &ids{lock: lock, prefix: "a-next"}
		cfg.IDs = idStore
		a = startNodeOn(t, lock, cfg)
		ts := time.Now()
		a.e.SetHealthy(false, "connection refused")
		sb := waitState(t, b.e, 10*time.Second, "b active", roleIs(lease.RoleActive))
		if d := sb.Since.Sub(ts); d < cfg.InheritGrace || d > cfg.InheritGrace+retryInterval {
			t.Errorf("b active %s after a's restart, want in [grace, grace+retry] = [%s, %s]", d, cfg.InheritGrace, cfg.InheritGrace+retryInterval)
		}
		if len(idStore.retired) != 1 || idStore.retired[0] != "a-id" || lock.LeaseID() != "a-next-1" {
			t.Errorf("retired %q, lock now uses %q", idStore.retired, lock.LeaseID())
		}
		time.Sleep(time.Minute)
		if c := lock.Count(leasetest.Release); c != 1 {
			t.Errorf("a made %d releases, want 1", c)
		}
		if _, on := a.e.Fence(); on {
			t.Error("unhealthy a is fenced on")
		}
	})
}

// TestStaleIDNeverDisturbsThePeer: the restarted process finds the lease
// already taken by the peer (its predecessor's expired): it never touches
// the peer's lease, healthy or not.
func TestStaleIDNeverDisturbsThePeer(t *testing.T) {
	for _, healthy := range []bool{true, false} {
		t.Run(fmt.Sprint("healthy=", healthy), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := leasetest.NewStore()
				var a, b *node
				neverTwoActive(t, store, &a, &b)
				crashedHolder(t, store, "a-id")
				b = startNode(t, store, testConfig("b"))
				b.e.SetHealthy(true, "ok")
				sb := waitState(t, b.e, leaseDuration+2*retryInterval, "b active after expiry", roleIs(lease.RoleActive))
				owner := store.Owner()

				cfg := testConfig("a")
				cfg.Inherited, cfg.InheritGrace = true, 2*time.Second
				a = startNodeOn(t, store.NewLockID("a", "a-id"), cfg)
				a.e.SetHealthy(healthy, "state")
				time.Sleep(time.Minute)
				if store.Owner() != owner {
					t.Errorf("owner changed from %q to %q", owner, store.Owner())
				}
				s := b.e.State()
				if s.Role != lease.RoleActive || s.Term != sb.Term {
					t.Errorf("b: %s term %d, want active term %d", s.Role, s.Term, sb.Term)
				}
				if c := a.lock.Count(leasetest.Release); c != 0 {
					t.Errorf("a made %d releases", c)
				}
			})
		})
	}
}

func TestLeaseIDRetiredBeforeEveryRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := leasetest.NewStore()
		lock := store.NewLockID("a", "a-0")
		idStore := &ids{lock: lock, prefix: "a"}
		cfg := testConfig("a")
		cfg.IDs = idStore
		cfg.CandidacyBackoff = 0
		a := startNodeOn(t, lock, cfg)
		a.e.SetHealthy(true, "ok")
		waitState(t, a.e, time.Second, "a active", roleIs(lease.RoleActive))
		if err := a.e.StepDown("deploy"); err != nil {
			t.Fatal(err)
		}
		// The retire came right before the release (the loop may already
		// have made calls after it: back-off 0).
		calls := lock.Calls()
		rel := -1
		for i, c := range calls {
			if c.Op == leasetest.Release {
				rel = i
				break
			}
		}
		if rel < 0 || len(idStore.before) != 1 || idStore.before[0] != rel {
			t.Fatalf("retire at call %v, release at %d, calls %v", idStore.before, rel, calls)
		}
		if lock.LeaseID() != "a-1" {
			t.Errorf("lock uses %q after the release, want a-1", lock.LeaseID())
		}
		s := waitState(t, a.e, 2*time.Second, "a active again under the new id", roleIs(lease.RoleActive))
		if store.Owner() != "a-1" || s.Term != 2 {
			t.Errorf("owner %q term %d", store.Owner(), s.Term)
		}

		// A retire that fails stops the release: the lease expires instead.
		idStore.mu.Lock()
		idStore.fail = errors.New("disk full")
		idStore.mu.Unlock()
		n := lock.Count(leasetest.Release)
		a.e.StepDown("deploy")
		if c := lock.Count(leasetest.Release); c != n {
			t.Errorf("release made although the id could not be retired")
		}
		if s := a.e.State(); s.LastError == "" {
			t.Error("no error shown for the failed retire")
		}
	})
}

// holderAndLinkedStandby starts a active and b a standby whose
// HolderAlive is alive (given a).
func holderAndLinkedStandby(t *testing.T, store *leasetest.Store, alive func(ctx context.Context, a *node, rec lease.Record) bool) (a, b *node) {
	t.Helper()
	a = startNode(t, store, testConfig("a"))
	a.e.SetHealthy(true, "ok")
	waitState(t, a.e, time.Second, "a active", roleIs(lease.RoleActive))
	cfg := testConfig("b")
	cfg.HolderAlive = func(ctx context.Context, rec lease.Record) bool { return alive(ctx, a, rec) }
	b = startNodeOn(t, store.NewLock("b"), cfg)
	b.e.SetHealthy(true, "ok")
	waitState(t, b.e, 2*time.Second, "b standby", roleIs(lease.RoleStandby))
	return a, b
}

// TestPushAndVouch: with the holder vouching over the link, a standby makes
// one storage call per lease duration instead of one per retry interval;
// a push after a release makes it acquire at once.
func TestPushAndVouch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := leasetest.NewStore()
		var a, b *node
		neverTwoActive(t, store, &a, &b)
		var asked atomic.Int64
		a, b = holderAndLinkedStandby(t, store, func(_ context.Context, a *node, rec lease.Record) bool {
			asked.Add(1)
			term, on := a.e.Fence()
			return on && rec.Holder == "a" && term == rec.Term
		})
		from := time.Now()
		time.Sleep(time.Hour)
		calls := callsIn(b.lock, leasetest.Acquire, from, time.Now()) + callsIn(b.lock, leasetest.Read, from, time.Now())
		// One call per lease duration, plus up to a retry interval each.
		if most, least := int(time.Hour/leaseDuration)+1, int(time.Hour/(leaseDuration+retryInterval)); calls > most || calls < least {
			t.Errorf("standby made %d storage calls in an hour with the holder vouching, want %d..%d", calls, least, most)
		}
		if asked.Load() < 3000 {
			t.Errorf("holder asked only %d times", asked.Load())
		}

		time.Sleep(300 * time.Millisecond) // off the retry grid
		if err := a.e.StepDown("deploy"); err != nil {
			t.Fatal(err)
		}
		ts := time.Now()
		b.e.Nudge()
		sb := waitState(t, b.e, time.Second, "b active", roleIs(lease.RoleActive))
		if d := sb.Since.Sub(ts); d != 0 {
			t.Errorf("b active %s after the push, want at once", d)
		}
	})
}

func TestNoteHolder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := leasetest.NewStore()
		a, b, _ := activeAndStandby(t, store)
		if err := a.e.StepDown("deploy"); err != nil {
			t.Fatal(err)
		}
		// b's acquisition record, pushed to a before a reads it.
		sb := waitState(t, b.e, 2*retryInterval, "b active", roleIs(lease.RoleActive))
		a.e.NoteHolder(lease.Record{Holder: "b", AdvertiseURL: "http://b:80", Term: sb.Term})
		s := a.e.State()
		if !s.HolderKnown || s.Holder.Holder != "b" || s.Term != sb.Term {
			t.Errorf("a after the push: %+v", s)
		}
		a.e.NoteHolder(lease.Record{Holder: "c", Term: sb.Term - 1}) // stale
		a.e.NoteHolder(lease.Record{Holder: "a", Term: sb.Term + 5}) // ourselves
		if s := a.e.State(); s.Holder.Holder != "b" {
			t.Errorf("a stale or own record was taken: %+v", s.Holder)
		}
	})
}

// handover is the target's side over a fake link: it calls the target's
// Elector as the peer API does.
type handover struct {
	target    *node
	proposed  string
	prepErr   error
	commitErr error
	commits   atomic.Int64
}

func (h *handover) Prepare(context.Context) (string, error) {
	if h.prepErr != nil {
		return "", h.prepErr
	}
	if err := h.target.e.CanAdopt(); err != nil {
		return "", err
	}
	return h.proposed, nil
}

func (h *handover) Commit(ctx context.Context, id string) (lease.Record, error) {
	h.commits.Add(1)
	if h.commitErr != nil {
		return lease.Record{}, h.commitErr
	}
	return h.target.e.Adopt(ctx, id)
}

func TestStepDownToNamedNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := leasetest.NewStore()
		var a, b, c *node
		neverTwoActive(t, store, &a, &b, &c)
		a, b, _ = activeAndStandby(t, store)
		c = startNode(t, store, testConfig("c"))
		c.e.SetHealthy(true, "ok")
		// Ownership of the lease at every call of every lock.
		var free atomic.Int64
		stop := make(chan struct{})
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
				if _, held := store.Holder(); !held {
					free.Add(1)
				}
			}
		}()
		time.Sleep(2 * time.Second)
		ts := time.Now()
		rec, err := a.e.StepDownTo(t.Context(), "step-down to b", &handover{target: b, proposed: "handover-1"})
		if err != nil {
			t.Fatal(err)
		}
		if rec.Holder != "b" || rec.Term != 2 {
			t.Errorf("handed over record %+v", rec)
		}
		sb := b.e.State()
		if sb.Role != lease.RoleActive || !sb.Since.Equal(ts) || sb.Reason != "lease handed over by a" {
			t.Errorf("b: %s since +%s (%s)", sb.Role, sb.Since.Sub(ts), sb.Reason)
		}
		if sa := a.e.State(); sa.Role != lease.RoleStandby || sa.Holder.Holder != "b" {
			t.Errorf("a: %s, holder %q", sa.Role, sa.Holder.Holder)
		}
		if store.Owner() != b.lock.LeaseID() || a.lock.Count(leasetest.Release) != 0 {
			t.Errorf("owner %q (b is %q), a released %d times", store.Owner(), b.lock.LeaseID(), a.lock.Count(leasetest.Release))
		}
		time.Sleep(time.Minute)
		close(stop)
		if n := free.Load(); n != 0 {
			t.Errorf("the lease was free at %d samples", n)
		}
		if r := c.e.State().Role; r != lease.RoleStandby {
			t.Errorf("c is %s", r)
		}
	})
}

func TestStepDownToRefusedStaysActive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := leasetest.NewStore()
		a, b, _ := activeAndStandby(t, store)
		b.e.SetHealthy(false, "down")
		_, err := a.e.StepDownTo(t.Context(), "step-down to b", &handover{target: b, proposed: "h"})
		if !errors.Is(err, lease.ErrNotEligible) {
			t.Errorf("err = %v, want ErrNotEligible", err)
		}
		if _, on := a.e.Fence(); !on {
			t.Error("a is no longer active after a refused handover")
		}
		if _, err := b.e.StepDownTo(t.Context(), "x", &handover{target: a}); !errors.Is(err, lease.ErrNotActive) {
			t.Errorf("StepDownTo on a standby: %v", err)
		}
	})
}

// TestStepDownToUnconfirmedReleases: the target never confirms; the old
// active releases the lease under the proposed ID and the election goes on.
func TestStepDownToUnconfirmedReleases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := leasetest.NewStore()
		var a, b *node
		neverTwoActive(t, store, &a, &b)
		a, b, _ = activeAndStandby(t, store)
		ts := time.Now()
		h := &handover{target: b, proposed: "h-1", commitErr: errors.New("timeout")}
		_, err := a.e.StepDownTo(t.Context(), "step-down to b", h)
		if err == nil || h.commits.Load() != 1 {
			t.Fatalf("err %v, %d commits", err, h.commits.Load())
		}
		if _, held := store.Holder(); held && store.Owner() == "h-1" {
			t.Error("the lease is still held under the proposed id")
		}
		sb := waitState(t, b.e, 2*retryInterval, "b active through the election", roleIs(lease.RoleActive))
		if d := sb.Since.Sub(ts); d > retryInterval {
			t.Errorf("b active after %s", d)
		}
	})
}

func TestAdoptNeedsEligibility(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := leasetest.NewStore()
		a, b, _ := activeAndStandby(t, store)
		if _, err := a.e.Adopt(t.Context(), "x"); !errors.Is(err, lease.ErrNotEligible) {
			t.Errorf("adopt on the active: %v", err)
		}
		b.e.SetMaintenance(true)
		if _, err := b.e.Adopt(t.Context(), "x"); !errors.Is(err, lease.ErrNotEligible) {
			t.Errorf("adopt in maintenance: %v", err)
		}
		b.e.SetMaintenance(false)
		// An ID that does not hold the lease: ErrLost, nothing changes.
		if _, err := b.e.Adopt(t.Context(), "not-the-holder"); !errors.Is(err, lease.ErrLost) {
			t.Errorf("adopt of a wrong id: %v", err)
		}
		if _, on := a.e.Fence(); !on {
			t.Error("a lost its fence")
		}
	})
}

// TestSlowPeerNeverDelaysAnElection: a holder that stops answering over
// the link (frozen, or a black-holed link) costs a standby at most one
// retry interval per round; once the holder is gone the standby takes over
// as without the link.
func TestSlowPeerNeverDelaysAnElection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := leasetest.NewStore()
		var a, b *node
		neverTwoActive(t, store, &a, &b)
		a, b = holderAndLinkedStandby(t, store, func(ctx context.Context, _ *node, _ lease.Record) bool {
			<-ctx.Done() // never answers: the elector's bound ends the wait
			return false
		})
		// a vanishes without releasing (its renewals stop).
		a.lock.Set(leasetest.Renew, leasetest.Hang())
		ts := time.Now()
		sb := waitState(t, b.e, 2*leaseDuration, "b active", roleIs(lease.RoleActive))
		// The lease expires at most leaseDuration after a's last renew;
		// b acquires within two rounds (each: the link's timeout, then a
		// storage call) after that.
		if d := sb.Since.Sub(ts); d > leaseDuration+2*retryInterval {
			t.Errorf("b active %s after a stopped renewing, want <= %s", d, leaseDuration+2*retryInterval)
		}
	})
}

// TestStepDownToFailedChangeReleases: a change that fails for a reason
// other than ErrLost (a timeout) is followed by a release that really
// frees the lease (under the old, already retired id), so the election
// resumes at once instead of after the lease's expiry.
func TestStepDownToFailedChangeReleases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := leasetest.NewStore()
		lock := store.NewLockID("a", "a-0")
		cfg := testConfig("a")
		cfg.IDs = &ids{lock: lock, prefix: "a"}
		var a, b *node
		neverTwoActive(t, store, &a, &b)
		a = startNodeOn(t, lock, cfg)
		a.e.SetHealthy(true, "ok")
		waitState(t, a.e, time.Second, "a active", roleIs(lease.RoleActive))
		b = startNode(t, store, testConfig("b"))
		b.e.SetHealthy(true, "ok")
		waitState(t, b.e, 2*time.Second, "b standby", roleIs(lease.RoleStandby))
		lock.Set(leasetest.Change, leasetest.Fail(errors.New("timeout")))
		ts := time.Now()
		if _, err := a.e.StepDownTo(t.Context(), "x", &handover{target: b, proposed: "h-1"}); err == nil {
			t.Fatal("StepDownTo succeeded with a failing change")
		}
		if _, held := store.Holder(); held {
			t.Errorf("still held under %q after the fallback release", store.Owner())
		}
		sb := waitState(t, b.e, 2*retryInterval, "b active", roleIs(lease.RoleActive))
		if d := sb.Since.Sub(ts); d > retryInterval {
			t.Errorf("b active %s after the failed handover, want <= %s", d, retryInterval)
		}
	})
}
