package azlock

import (
	"context"
	"testing"
	"time"

	"github.com/batonproxy/baton/internal/azure"
	"github.com/batonproxy/baton/internal/azure/azuritetest"
	"github.com/batonproxy/baton/lease"
)

// testElectorTakeover: a process killed while active leaves the lease held
// under its ID; a new lock with that ID (a restarted process) takes it over
// at once, under a new term, while the standby stays a standby.
func testElectorTakeover(t *testing.T, az *azuritetest.Azurite) {
	id, err := azure.NewLeaseID()
	if err != nil {
		t.Fatal(err)
	}
	dead, _ := newAzuriteLock(t, az, "takeover", func(o *Options) { o.LeaseID = id })
	old := mustAcquire(t, dead, "node-a")
	lb, _ := newAzuriteLock(t, az, "takeover")
	b := startElector(t, lb, testElectorConfig("node-b"))
	waitFor(t, 5*time.Second, "node-b standby", func() bool { return b.State().Role == lease.RoleStandby })

	la, _ := newAzuriteLock(t, az, "takeover", func(o *Options) { o.LeaseID = id })
	cfg := testElectorConfig("node-a")
	cfg.Inherited, cfg.InheritGrace = true, 5*time.Second
	t0 := time.Now()
	a := startElector(t, la, cfg)
	mon := watchFences(t, []string{"node-a", "node-b"}, a, b)
	waitFor(t, 3*time.Second, "node-a active again", func() bool { _, ok := a.Fence(); return ok })
	took := time.Since(t0)
	s := a.State()
	if s.Term != old.Term+1 || s.Reason != "lease taken over from this node's previous process" {
		t.Errorf("node-a after the takeover: term %d (want %d), %q", s.Term, old.Term+1, s.Reason)
	}
	t.Logf("takeover of a dead process's lease took %v (the lease lasts 15s)", took.Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	mon.stop()
	if r := b.State().Role; r != lease.RoleStandby {
		t.Errorf("node-b is %s", r)
	}
}

// directHandover is the target's side without the peer link.
type directHandover struct {
	target *lease.Elector
	id     string
}

func (h directHandover) Prepare(context.Context) (string, error) { return h.id, h.target.CanAdopt() }
func (h directHandover) Commit(ctx context.Context, id string) (lease.Record, error) {
	return h.target.Adopt(ctx, id)
}

// testElectorHandover: StepDownTo moves the lease to the named node on the
// storage's Change Lease; a reader never sees it free.
func testElectorHandover(t *testing.T, az *azuritetest.Azurite) {
	la, _ := newAzuriteLock(t, az, "handover")
	lb, _ := newAzuriteLock(t, az, "handover")
	reader, _ := newAzuriteLock(t, az, "handover")
	a := startElector(t, la, testElectorConfig("node-a"))
	waitFor(t, 10*time.Second, "node-a active", func() bool { _, ok := a.Fence(); return ok })
	b := startElector(t, lb, testElectorConfig("node-b"))
	waitFor(t, 5*time.Second, "node-b standby", func() bool { return b.State().Role == lease.RoleStandby })
	mon := watchFences(t, []string{"node-a", "node-b"}, a, b)
	term := a.State().Term

	free := make(chan int, 1)
	stop := make(chan struct{})
	go func() {
		n := 0
		defer func() { free <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, held, err := reader.Read(ctxT(t, 2*time.Second)); err == nil && !held {
				n++
			}
		}
	}()
	time.Sleep(100 * time.Millisecond)
	id, _ := azure.NewLeaseID()
	t0 := time.Now()
	rec, err := a.StepDownTo(ctxT(t, 10*time.Second), "step-down to node-b", directHandover{target: b, id: id})
	took := time.Since(t0)
	time.Sleep(100 * time.Millisecond)
	close(stop)
	if n := <-free; n != 0 {
		t.Errorf("a reader saw the lease free %d times during the handover", n)
	}
	mon.stop()
	if err != nil || rec.Holder != "node-b" || rec.Term != term+1 {
		t.Fatalf("StepDownTo: %+v %v", rec, err)
	}
	if _, ok := b.Fence(); !ok || lb.LeaseID() == id {
		t.Errorf("node-b not active under its own id after the handover")
	}
	got, held, err := reader.Read(ctxT(t, 5*time.Second))
	if err != nil || !held || got.Holder != "node-b" || got.Term != term+1 {
		t.Errorf("holder record after the handover: %+v %v %v", got, held, err)
	}
	t.Logf("handover on Azurite took %v", took.Round(time.Millisecond))
}

// testStandbyTransactionsWithLink: a standby whose holder vouches for
// itself over the link reads the storage once per lease duration instead of
// once per retry interval (default timing: ≤ 400 transactions an hour).
func testStandbyTransactionsWithLink(t *testing.T, az *azuritetest.Azurite) {
	cfg := defaultTiming
	la, _ := newAzuriteLock(t, az, "count-link")
	lb, cb := newAzuriteLock(t, az, "count-link")
	a := startElector(t, la, cfg("node-a"))
	waitFor(t, 10*time.Second, "node-a active", func() bool { _, ok := a.Fence(); return ok })
	cb2 := cfg("node-b")
	cb2.HolderAlive = func(_ context.Context, rec lease.Record) bool {
		term, ok := a.Fence()
		return ok && rec.Holder == "node-a" && term == rec.Term
	}
	b := startElector(t, lb, cb2)
	waitFor(t, 5*time.Second, "node-b standby", func() bool { return b.State().Role == lease.RoleStandby })
	// The standby reads once per lease duration (plus up to a retry
	// interval): count the requests of a window of two such periods.
	const window = 32 * time.Second
	t0 := time.Now()
	time.Sleep(window)
	_, n := cb.rate(t0, time.Now())
	standby := float64(n) * float64(time.Hour) / float64(window)
	t.Logf("standby storage transactions per hour with the holder vouching over the link: %.0f (%d requests in %v; 3600 without)", standby, n, window)
	if n < 1 || standby > 400 {
		t.Errorf("standby: %.0f transactions/hour (%d requests), want <= 400", standby, n)
	}
}
