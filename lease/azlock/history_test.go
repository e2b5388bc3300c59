package azlock

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/batonproxy/baton/internal/azure"
	"github.com/batonproxy/baton/internal/azure/azuritetest"
	"github.com/batonproxy/baton/lease"
	"github.com/batonproxy/baton/lease/history"
)

func newAzuriteHistory(t *testing.T, az *azuritetest.Azurite, blob string) *history.Conditional {
	t.Helper()
	h, err := NewHistory(Options{Container: "hist", Blob: blob, Options: azure.Options{
		Auth:             azure.AuthConnectionString,
		ConnectionString: az.ConnectionString(),
		CallTimeout:      time.Second,
		Transport:        testTransport(t),
	}}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestAzBlobHistoryAzurite: the history blob beside the lease blob, on a
// real Azurite: created on the first write, concurrent writers lose
// nothing (a lost race is a 412 that is read again and retried), and the
// lease held on the lease blob does not get in the way.
func TestAzBlobHistoryAzurite(t *testing.T) {
	t.Parallel()
	az := azuritetest.Start(t)
	ctx := func() context.Context { return ctxT(t, 10*time.Second) }

	h := newAzuriteHistory(t, az, "leader")
	if got := h.String(); got != "azblob hist/leader.history" {
		t.Errorf("String() = %q", got)
	}
	if d, err := h.Read(ctx()); err != nil || len(d.Entries) != 0 {
		t.Fatalf("Read with no container: %+v, %v", d, err)
	}

	// The lease blob is held while the history is written.
	l, _ := newAzuriteLock(t, az, "leader", func(o *Options) { o.Container = "hist" })
	rec := mustAcquire(t, l, "node-a")
	defer l.Release(ctxT(t, 10*time.Second))
	if err := h.Update(ctx(), func(d *history.Document) {
		d.Begin(rec.Term, rec.Holder, rec.AcquiredAt, history.StartAcquired)
	}); err != nil {
		t.Fatalf("first Update (creates the blob): %v", err)
	}

	// A lost race: the version read is stale by the time of the write.
	b := historyBlob{cont: l.cont, name: "leader" + history.Suffix}
	_, version, err := b.Get(ctx())
	if err != nil || version == "" {
		t.Fatalf("Get: %q, %v", version, err)
	}
	if err := h.Update(ctx(), func(d *history.Document) { d.End(rec.Term, "node-a", time.Now(), history.EndReleased+"test") }); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx(), []byte(`{"version":1,"entries":[]}`), version); !errors.Is(err, history.ErrConflict) || !strings.Contains(err.Error(), "412") {
		t.Errorf("Put with a stale ETag: %v, want a 412 wrapping ErrConflict", err)
	}
	if err := b.Put(ctx(), []byte(`{}`), ""); !errors.Is(err, history.ErrConflict) {
		t.Errorf("creating an existing blob: %v, want ErrConflict", err)
	}

	// Concurrent writers, each with its own client: every record arrives.
	const writers, each = 4, 6
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		stores []*history.Conditional
	)
	for w := range writers {
		s := newAzuriteHistory(t, az, "leader")
		stores = append(stores, s)
		wg.Go(func() {
			for i := range each {
				term := rec.Term + uint64(1+w*each+i)
				if err := s.Update(ctxT(t, 30*time.Second), func(d *history.Document) {
					d.Begin(term, "writer", time.Now(), history.StartAcquired)
				}); err != nil {
					mu.Lock()
					t.Error(err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	var conflicts int64
	for _, s := range stores {
		conflicts += s.Conflicts()
	}
	t.Logf("%d conflicts retried among %d writers", conflicts, writers)
	d, err := h.Read(ctx())
	if err != nil || len(d.Entries) != 1+writers*each {
		t.Fatalf("after concurrent writes: %d entries, %v; want %d", len(d.Entries), err, 1+writers*each)
	}
	if e := d.Entries[0]; e.Node != "node-a" || e.End != history.EndReleased+"test" {
		t.Errorf("first entry: %+v", e)
	}

	// A Recorder on the blob: what the node runs.
	r := history.NewRecorder(newAzuriteHistory(t, az, "other"), history.Options{Node: "node-b"}, zaptest.NewLogger(t))
	r.Start()
	r.OnEvent(lease.Event{Kind: lease.EventAcquired, Term: 7, Reason: "lease acquired", Holder: lease.Record{Holder: "node-b", Term: 7, AcquiredAt: time.Now()}})
	r.OnEvent(lease.Event{Kind: lease.EventReleased, Term: 7})
	r.OnEvent(lease.Event{Kind: lease.EventDemoted, Reason: "stopping"})
	r.Close(10 * time.Second)
	d, err = newAzuriteHistory(t, az, "other").Read(ctx())
	if err != nil || len(d.Entries) != 1 || d.Entries[0].End != history.EndReleased+"stop" {
		t.Errorf("recorded on Azure: %+v, %v", d, err)
	}
}
