package history

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"

	"github.com/batonproxy/baton/lease"
	"github.com/batonproxy/baton/lease/leasetest"
)

// electorNode is an Elector on a leasetest lock with a Recorder fed by
// its events.
type electorNode struct {
	e    *lease.Elector
	lock *leasetest.Lock
	rec  *Recorder
}

func startElector(t *testing.T, store *leasetest.Store, hist Store, name string) *electorNode {
	t.Helper()
	n := &electorNode{lock: store.NewLock(name)}
	n.rec = NewRecorder(hist, Options{Node: name}, zap.NewNop())
	e, err := lease.NewElector(n.lock, lease.Config{
		NodeName: name, Duration: 15 * time.Second, RenewInterval: 3 * time.Second,
		RenewDeadline: 10 * time.Second, RetryInterval: time.Second, CandidacyBackoff: 10 * time.Second,
		OnEvent: n.rec.OnEvent,
	}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	n.e = e
	n.rec.Start()
	e.Start(t.Context())
	t.Cleanup(func() { e.Stop(); n.rec.Close(time.Second) })
	return n
}

func waitActive(t *testing.T, n *electorNode, limit time.Duration) lease.State {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if s := n.e.State(); s.Role == lease.RoleActive {
			return s
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("not active within %v: %+v", limit, n.e.State())
	return lease.State{}
}

// handover plays the peer link for StepDownTo: the target adopts the
// lease under the proposed ID.
type handover struct{ target *electorNode }

func (h handover) Prepare(context.Context) (string, error) {
	return "proposed-id", h.target.e.CanAdopt()
}
func (h handover) Commit(ctx context.Context, id string) (lease.Record, error) {
	return h.target.e.Adopt(ctx, id)
}

// TestElectorEventsRecorded runs two real Electors whose events feed
// Recorders on one history store, through a step-down, a handover, a lost
// renew deadline, a crash (its records never written) and a stop, and
// checks every term's record: the Elector's reasons and the Recorder's
// mapping agree.
func TestElectorEventsRecorded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := leasetest.NewStore()
		hist := NewConditional(&memBlob{})
		a := startElector(t, store, hist, "a")
		b := startElector(t, store, hist, "b")
		a.e.SetHealthy(true, "ok")
		waitActive(t, a, 2*time.Second) // term 1
		b.e.SetHealthy(true, "ok")
		time.Sleep(2 * time.Second)

		if err := a.e.StepDown("test"); err != nil { // term 1 released
			t.Fatal(err)
		}
		waitActive(t, b, 3*time.Second) // term 2
		time.Sleep(11 * time.Second)    // a's back-off

		b.rec.HandingOverTo("a") // what the node does before StepDownTo
		if _, err := b.e.StepDownTo(t.Context(), "step-down to a requested by operator", handover{a}); err != nil {
			t.Fatal(err)
		}
		waitActive(t, a, time.Second) // term 3, handed over by b

		a.lock.Set(leasetest.Renew, leasetest.Hang())
		waitActive(t, b, 30*time.Second) // a's deadline passes, then the lease expires: term 4
		a.lock.Set(leasetest.Renew, leasetest.Pass())

		// b "crashes": its recorder is gone before its demotion is recorded.
		b.rec.Close(time.Second)
		b.e.Stop()
		waitActive(t, a, 15*time.Second) // term 5
		a.e.Stop()                       // term 5 released: stop
		a.rec.Close(time.Second)

		want := `1 a [acquired] -> [released: step-down] by a
2 b [acquired] -> [handed over to a] by b
3 a [handed over by b] -> [lost: renew deadline passed] by a
4 b [acquired] -> [lost: expired or the node crashed] by a
5 a [acquired] -> [released: stop] by a
`
		if got := summary(read(t, hist)); got != want {
			t.Errorf("got\n%s\nwant\n%s", got, want)
		}
		for _, e := range read(t, hist).Entries {
			if e.AcquiredAt.IsZero() || e.EndedAt.Before(e.AcquiredAt) || strings.Contains(e.End, "unknown") {
				t.Errorf("term %d: %+v", e.Term, e)
			}
		}
	})
}

// TestElectionIgnoresAHangingHistory: with the history's storage hanging
// (ignoring every context), the election runs exactly as without it: a
// step-down moves the role within a retry interval and Stop returns at
// once.
func TestElectionIgnoresAHangingHistory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := leasetest.NewStore()
		h := &hangingStore{gate: make(chan struct{})}
		a := startElector(t, store, h, "a")
		b := startElector(t, store, h, "b")
		a.e.SetHealthy(true, "ok")
		waitActive(t, a, 2*time.Second)
		b.e.SetHealthy(true, "ok")
		time.Sleep(2 * time.Second)
		t0 := time.Now()
		if err := a.e.StepDown("test"); err != nil {
			t.Fatal(err)
		}
		waitActive(t, b, 2*time.Second)
		if took := time.Since(t0); took > time.Second+10*time.Millisecond {
			t.Errorf("b active %v after the step-down, want within one retry interval", took)
		}
		t0 = time.Now()
		b.e.Stop()
		a.e.Stop()
		if took := time.Since(t0); took > 0 {
			t.Errorf("Stop took %v of fake time", took)
		}
		if h.calls.Load() == 0 || a.rec.Pending() == 0 {
			t.Errorf("the history was not even tried: %d writes, %d pending", h.calls.Load(), a.rec.Pending())
		}
		close(h.gate) // let the stuck writes return before the bubble ends
		a.rec.Close(time.Second)
		b.rec.Close(time.Second)
	})
}
