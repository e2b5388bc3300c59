package history

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/batonproxy/baton/lease"
)

// waitWritten waits until r has nothing pending.
func waitWritten(t *testing.T, r *Recorder) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.Pending() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d records still pending", r.Pending())
		}
		time.Sleep(time.Millisecond)
	}
}

func read(t *testing.T, s Store) Document {
	t.Helper()
	d, err := s.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// clock is a settable wall clock.
type clock struct{ now atomic.Int64 }

func (c *clock) set(sec int)    { c.now.Store(at(sec).UnixNano()) }
func (c *clock) Now() time.Time { return time.Unix(0, c.now.Load()) }
func acquired(term uint64, sec int, reason string) lease.Event {
	return lease.Event{Kind: lease.EventAcquired, Term: term, Reason: reason,
		Holder: lease.Record{Holder: "a", Term: term, AcquiredAt: at(sec)}}
}

// TestRecorderEvents: the Elector's events of one node become its entries,
// with how each term started and ended.
func TestRecorderEvents(t *testing.T) {
	store := NewConditional(&memBlob{})
	var c clock
	r := NewRecorder(store, Options{Node: "a", Now: c.Now}, zap.NewNop())
	r.Start()
	defer r.Close(time.Second)
	demoted := func(sec int, reason string) {
		c.set(sec)
		r.OnEvent(lease.Event{Kind: lease.EventDemoted, Reason: reason})
	}
	event := func(sec int, ev lease.Event) { c.set(sec); r.OnEvent(ev) }

	event(0, acquired(1, 0, "lease acquired"))
	event(2, lease.Event{Kind: lease.EventFailsafe, Term: 1, Err: errors.New("storage down")})
	event(5, lease.Event{Kind: lease.EventFailsafe, Term: 1, Latency: 3 * time.Second})
	event(8, lease.Event{Kind: lease.EventReleased, Term: 1})
	demoted(8, "step-down: step-down requested by operator")

	event(10, acquired(3, 10, "lease handed over by b"))
	r.HandingOverTo("b")
	event(12, lease.Event{Kind: lease.EventHandedOver, Term: 3})
	demoted(12, "step-down to b requested by operator")

	event(20, acquired(5, 20, "lease taken over from this node's previous process"))
	demoted(21, "renew deadline passed")
	event(22, acquired(6, 22, "lease acquired"))
	demoted(23, "backend unhealthy: check app: connection refused") // the release failed: no EventReleased
	event(24, acquired(7, 24, "lease acquired"))
	event(25, lease.Event{Kind: lease.EventFailsafe, Term: 7, Err: errors.New("storage down")})
	demoted(26, "lease lost")
	event(26, lease.Event{Kind: lease.EventFailsafe, Term: 7, Latency: time.Second}) // failsafe ends after the demotion
	event(30, acquired(8, 30, ""))
	event(31, lease.Event{Kind: lease.EventReleased, Term: 8})
	demoted(31, "stopping")
	event(40, lease.Event{Kind: lease.EventReleased, Term: 9}) // acquired, never active, given back
	event(41, lease.Event{Kind: lease.EventRenewed, Term: 9})  // not recorded

	waitWritten(t, r)
	want := `1 a [acquired] -> [released: step-down] by a fs(02-05)
3 a [handed over by b] -> [handed over to b] by a
5 a [taken over from this node's previous process] -> [lost: renew deadline passed] by a
6 a [acquired] -> [gave up: unhealthy (check app: connection refused) (the release failed: the lease expired on its own)] by a
7 a [acquired] -> [lost: renew refused (the lease expired and was taken, or was broken)] by a fs(25-26)
8 a [acquired] -> [released: stop] by a
9 a [] -> [released: at once (not eligible any more when the acquisition answered)] by a
`
	if got := summary(read(t, store)); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if e := read(t, store).Entries[0]; !e.AcquiredAt.Equal(at(0)) || !e.EndedAt.Equal(at(8)) {
		t.Errorf("term 1 times: %v .. %v", e.AcquiredAt, e.EndedAt)
	}
}

// TestRecorderInheritedRelease: a restarted process that was not eligible
// gives back its predecessor's lease; that term's end says so.
func TestRecorderInheritedRelease(t *testing.T) {
	store := NewConditional(&memBlob{})
	store.Update(t.Context(), func(d *Document) { d.Begin(4, "a", at(0), StartAcquired) })
	r := NewRecorder(store, Options{Node: "a", Inherited: true}, zap.NewNop())
	r.Start()
	defer r.Close(time.Second)
	r.OnEvent(lease.Event{Kind: lease.EventReleased, Term: 4})
	waitWritten(t, r)
	if got, want := summary(read(t, store)), "4 a [acquired] -> [released: by the node's restarted process (not eligible)] by a\n"; got != want {
		t.Errorf("got %s want %s", got, want)
	}
}

// hangingStore is a Store whose Update blocks until gate is closed,
// ignoring its context (the worst a storage client can do).
type hangingStore struct {
	gate    chan struct{}
	calls   atomic.Int64
	honours bool // return when ctx is done
}

func (h *hangingStore) Read(context.Context) (Document, error) { return Document{}, nil }
func (h *hangingStore) String() string                         { return "hanging" }
func (h *hangingStore) Update(ctx context.Context, _ func(*Document)) error {
	h.calls.Add(1)
	if h.honours {
		select {
		case <-h.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
		return nil
	}
	<-h.gate
	return errors.New("gave up")
}

// TestRecorderNeverBlocks: with a Store that hangs, ignoring its context,
// OnEvent still returns at once, the queue stays bounded, and Close
// returns after its timeout.
func TestRecorderNeverBlocks(t *testing.T) {
	h := &hangingStore{gate: make(chan struct{})}
	core, logs := observer.New(zapcore.InfoLevel)
	r := NewRecorder(h, Options{Node: "a", WriteTimeout: 50 * time.Millisecond}, zap.New(core))
	r.Start()
	defer func() { close(h.gate); <-r.done }() // let the stuck write return before the leak check

	const events = 20_000
	var slowest time.Duration
	t0 := time.Now()
	for i := range events {
		s := time.Now()
		term := uint64(i/2 + 1)
		if i%2 == 0 {
			r.OnEvent(acquired(term, i, "lease acquired"))
		} else {
			r.OnEvent(lease.Event{Kind: lease.EventDemoted, Reason: "renew deadline passed"})
		}
		slowest = max(slowest, time.Since(s))
	}
	took := time.Since(t0)
	t.Logf("%d events in %v (slowest %v) with the store hanging", events, took, slowest)
	// The store never answers: any call that waited for it would not
	// return at all. The bounds only allow for the race detector and a
	// busy machine.
	if slowest > time.Second || took > 10*time.Second {
		t.Errorf("OnEvent blocked: slowest call %v, all %v", slowest, took)
	}
	if n := r.Pending(); n != MaxPending {
		t.Errorf("%d records pending, want the bound %d", n, MaxPending)
	}
	if h.calls.Load() != 1 {
		t.Errorf("%d writes started, want the one that hangs", h.calls.Load())
	}
	t0 = time.Now()
	r.Close(100 * time.Millisecond)
	if took := time.Since(t0); took > time.Second {
		t.Errorf("Close took %v with a hanging store, want about its timeout", took)
	}
	if logs.FilterMessage("lease history: records not written before the stop").Len() != 1 {
		t.Errorf("the records lost at the stop were not logged: %v", logs.All())
	}
}

// TestRecorderRetriesAndLogsOnce: writes time out (the store honours its
// context) or fail many times in a row; the Recorder logs that once,
// retries in the background, logs the recovery once, and loses nothing.
func TestRecorderRetriesAndLogsOnce(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	blob := &memBlob{}
	flaky := &flakyStore{Store: NewConditional(blob), fail: &fail}
	core, logs := observer.New(zapcore.InfoLevel)
	r := NewRecorder(flaky, Options{Node: "a", RetryMin: time.Millisecond, RetryMax: 4 * time.Millisecond}, zap.New(core))
	r.Start()
	defer r.Close(time.Second)
	r.OnEvent(acquired(1, 0, "lease acquired"))
	for flaky.calls.Load() < 20 {
		time.Sleep(time.Millisecond)
	}
	r.OnEvent(lease.Event{Kind: lease.EventReleased, Term: 1})
	r.OnEvent(lease.Event{Kind: lease.EventDemoted, Reason: "stopping"})
	fail.Store(false)
	waitWritten(t, r)
	if n := logs.FilterMessageSnippet("could not write the lease history").Len(); n != 1 {
		t.Errorf("%d failure lines for %d failed writes, want 1", n, flaky.calls.Load()-1)
	}
	if n := logs.FilterMessage("lease history written again").Len(); n != 1 {
		t.Errorf("%d recovery lines, want 1", n)
	}
	if got, want := summary(read(t, flaky)), "1 a [acquired] -> [released: stop] by a\n"; got != want {
		t.Errorf("got %s want %s", got, want)
	}

	// A store that hangs but honours its context: each write gives up at
	// WriteTimeout and is retried.
	h := &hangingStore{gate: make(chan struct{}), honours: true}
	r2 := NewRecorder(h, Options{Node: "a", WriteTimeout: 10 * time.Millisecond, RetryMin: time.Millisecond, RetryMax: time.Millisecond}, zap.NewNop())
	r2.Start()
	r2.OnEvent(acquired(1, 0, "lease acquired"))
	for h.calls.Load() < 3 {
		time.Sleep(time.Millisecond)
	}
	close(h.gate)
	waitWritten(t, r2)
	r2.Close(time.Second)
}

type flakyStore struct {
	Store
	fail  *atomic.Bool
	calls atomic.Int64
}

func (f *flakyStore) Update(ctx context.Context, fn func(*Document)) error {
	f.calls.Add(1)
	if f.fail.Load() {
		return errors.New("503 ServerBusy")
	}
	return f.Store.Update(ctx, fn)
}

// TestRecorderCloseFlushes: Close writes what is pending; Close without
// Start and a nil Recorder are fine.
func TestRecorderCloseFlushes(t *testing.T) {
	store := NewConditional(&memBlob{})
	r := NewRecorder(store, Options{Node: "a"}, zap.NewNop())
	r.Start()
	r.OnEvent(acquired(1, 0, "lease acquired"))
	r.OnEvent(lease.Event{Kind: lease.EventReleased, Term: 1})
	r.OnEvent(lease.Event{Kind: lease.EventDemoted, Reason: "stopping"})
	r.Close(time.Second)
	r.Close(time.Second)
	if got, want := summary(read(t, store)), "1 a [acquired] -> [released: stop] by a\n"; got != want {
		t.Errorf("after Close: %s want %s", got, want)
	}
	NewRecorder(store, Options{Node: "a"}, nil).Close(time.Second)
	var nilRec *Recorder
	nilRec.Start()
	nilRec.OnEvent(acquired(1, 0, ""))
	nilRec.HandingOverTo("b")
	nilRec.Close(time.Second)
}

// TestTwoRecordersConcurrently: two nodes' Recorders write one store at
// the same time; every record of both arrives.
func TestTwoRecordersConcurrently(t *testing.T) {
	blob := &memBlob{}
	var wg sync.WaitGroup
	for _, name := range []string{"a", "b"} {
		wg.Go(func() {
			r := NewRecorder(NewConditional(blob), Options{Node: name}, zap.NewNop())
			r.Start()
			for i := range 50 {
				term := uint64(2*i + 1)
				if name == "b" {
					term++
				}
				r.OnEvent(lease.Event{Kind: lease.EventAcquired, Term: term, Reason: "lease acquired",
					Holder: lease.Record{Holder: name, Term: term, AcquiredAt: at(int(term))}})
				r.OnEvent(lease.Event{Kind: lease.EventReleased, Term: term})
				r.OnEvent(lease.Event{Kind: lease.EventDemoted, Reason: "step-down: test"})
				time.Sleep(100 * time.Microsecond)
			}
			r.Close(5 * time.Second)
		})
	}
	wg.Wait()
	d := read(t, NewConditional(blob))
	if len(d.Entries) != 100 {
		t.Fatalf("%d entries, want 100", len(d.Entries))
	}
	for _, e := range d.Entries {
		if e.End != EndReleased+"step-down" || e.EndedBy != e.Node {
			t.Errorf("term %d: %+v", e.Term, e)
		}
	}
}
