package history

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/batonproxy/baton/lease"
)

// Defaults of Options.
const (
	DefaultWriteTimeout = 30 * time.Second
	DefaultRetryMin     = time.Second
	DefaultRetryMax     = time.Minute
	// MaxPending is how many records wait for a write at most; past it
	// the oldest are dropped (and counted in the log).
	MaxPending = 1000
)

// Options configures a Recorder.
type Options struct {
	// Node is this node's name, as in the holder record. Required.
	Node string
	// Inherited is lease.Config.Inherited: this process took over the
	// lease ID of an earlier, dead process of this node. A release of a
	// term this process never acquired is then that predecessor's lease,
	// given back because this node was not eligible.
	Inherited bool
	// WriteTimeout bounds one Store.Update. Default DefaultWriteTimeout.
	WriteTimeout time.Duration
	// RetryMin and RetryMax bound the pause after a failed write (it
	// doubles from RetryMin). Defaults DefaultRetryMin, DefaultRetryMax.
	RetryMin, RetryMax time.Duration
	// Now is the wall clock (tests). Default time.Now.
	Now func() time.Time
}

// Recorder turns the Elector's events (lease.Config.OnEvent) into history
// records and writes them to a Store from a goroutine of its own. Nothing
// it does blocks its caller: OnEvent only appends to a bounded queue, and
// a write that fails or hangs only delays later writes (retried with a
// growing pause; logged once when writes start failing and once when they
// work again). A nil *Recorder does nothing.
type Recorder struct {
	store Store
	log   *zap.Logger
	o     Options

	mu        sync.Mutex
	pending   []op   // waiting for a write, in order
	seq       uint64 // of the last op queued
	dropped   int    // ops dropped since the last report
	failures  int    // failed writes in a row
	cur       uint64 // the term this process holds, 0 when none
	released  bool   // cur's lease was released (EventReleased)
	handed    bool   // cur's lease was handed over (EventHandedOver)
	to        string // the node a handover goes to (HandingOverTo)
	inherited bool   // Options.Inherited, until the first acquisition or release
	fsTerm    uint64 // the open failsafe period: its term and start
	fsSince   time.Time

	wake      chan struct{} // capacity 1: ops queued
	quit      chan struct{} // closed by Close
	done      chan struct{} // closed when run ends
	ctx       context.Context
	cancel    context.CancelFunc
	startOnce sync.Once
	closeOnce sync.Once
}

// NewRecorder returns a Recorder that writes to store. It writes nothing
// until Start.
func NewRecorder(store Store, o Options, log *zap.Logger) *Recorder {
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.RetryMin <= 0 {
		o.RetryMin = DefaultRetryMin
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(DefaultRetryMax, o.RetryMin)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if log == nil {
		log = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Recorder{
		store: store, log: log.Named("history"), o: o, inherited: o.Inherited,
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
		ctx: ctx, cancel: cancel,
	}
}

// Start starts the writer goroutine. Calling it again does nothing.
func (r *Recorder) Start() {
	if r == nil {
		return
	}
	r.startOnce.Do(func() { go r.run() })
}

// Close writes what is pending, waiting at most timeout, and stops the
// writer. Records still unwritten then are lost (and logged). It is
// idempotent and safe without Start.
func (r *Recorder) Close(timeout time.Duration) {
	if r == nil {
		return
	}
	r.closeOnce.Do(func() {
		close(r.quit)
		r.startOnce.Do(func() { close(r.done) }) // never started
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-r.done:
		case <-t.C:
			// A Store that ignores its context may still hang: stop
			// waiting for it.
			r.cancel()
		}
		r.cancel()
		if n := r.Pending(); n > 0 {
			r.log.Warn("lease history: records not written before the stop", zap.Int("records", n), zap.String("store", r.store.String()))
		}
	})
}

// Pending returns how many records wait for a write.
func (r *Recorder) Pending() int {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

// HandingOverTo tells the Recorder the name of the node a handover
// (lease.Elector.StepDownTo) is about to give the lease to, for the
// record of how the term ended.
func (r *Recorder) HandingOverTo(node string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.to = node
	r.mu.Unlock()
}

// OnEvent records what ev says about this node's terms. It is meant for
// lease.Config.OnEvent: it never blocks and never calls the Elector.
func (r *Recorder) OnEvent(ev lease.Event) {
	if r == nil {
		return
	}
	now := clean(r.o.Now())
	r.mu.Lock()
	defer r.mu.Unlock()
	switch ev.Kind {
	case lease.EventAcquired:
		at := ev.Holder.AcquiredAt
		if at.IsZero() {
			at = now
		}
		r.cur, r.released, r.handed, r.inherited = ev.Term, false, false, false
		r.queueLocked(op{kind: opBegin, term: ev.Term, at: at, how: startHow(ev.Reason, ev.Holder.Resumed)})
	case lease.EventReleased:
		switch {
		case r.cur != 0 && ev.Term == r.cur:
			r.released = true // the demotion that follows says why
		case r.inherited:
			r.inherited = false
			r.queueLocked(op{kind: opEnd, term: ev.Term, at: now, how: EndReleased + "by the node's restarted process (not eligible)"})
		default:
			r.queueLocked(op{kind: opEnd, term: ev.Term, at: now, how: EndReleased + "at once (not eligible any more when the acquisition answered)"})
		}
	case lease.EventHandedOver:
		if r.cur != 0 && ev.Term == r.cur {
			r.handed = true
		}
	case lease.EventDemoted:
		if r.cur == 0 {
			return
		}
		r.queueLocked(op{kind: opEnd, term: r.cur, at: now, how: endHow(ev.Reason, r.released, r.handed, r.to)})
		r.cur, r.released, r.handed, r.to, r.inherited = 0, false, false, "", false
	case lease.EventFailsafe:
		if ev.Err != nil {
			r.fsTerm, r.fsSince = ev.Term, now
			r.queueLocked(op{kind: opFailsafeStart, term: ev.Term, at: now})
			return
		}
		if !r.fsSince.IsZero() {
			r.queueLocked(op{kind: opFailsafeEnd, term: r.fsTerm, since: r.fsSince, at: now})
			r.fsTerm, r.fsSince = 0, time.Time{}
		}
	}
}

// startHow is how a term started, from the reason of the role change
// (lease.Event.Reason of EventAcquired: "lease acquired", "lease taken
// over from this node's previous process", "lease handed over by NODE").
func startHow(reason string, resumed bool) string {
	how := strings.TrimPrefix(reason, "lease ")
	switch {
	case how == "" && resumed:
		return StartAcquired + " (still held under this node's lease id)"
	case how == "":
		return StartAcquired
	}
	return how
}

// endHow is how this node's term ended, from the reason of its demotion
// (lease.Event.Reason of EventDemoted) and whether the lease was released
// or handed over before it.
func endHow(reason string, released, handed bool, to string) string {
	switch {
	case handed && to != "":
		return EndHandedOverTo + to
	case handed:
		return "handed over"
	case reason == "renew deadline passed":
		return EndLost + "renew deadline passed"
	case reason == "lease lost":
		return EndLost + "renew refused (the lease expired and was taken, or was broken)"
	}
	what := reason
	switch {
	case strings.HasPrefix(reason, "step-down"):
		what = "step-down"
	case reason == "stopping" || reason == "stopped":
		what = "stop"
	case strings.HasPrefix(reason, "backend unhealthy: "):
		what = "unhealthy (" + strings.TrimPrefix(reason, "backend unhealthy: ") + ")"
	}
	if released {
		return EndReleased + what
	}
	return "gave up: " + what + " (the release failed: the lease expired on its own)"
}

// queueLocked appends o to the pending records, dropping the oldest past
// MaxPending, and wakes the writer.
func (r *Recorder) queueLocked(o op) {
	r.seq++
	o.seq = r.seq
	if len(r.pending) >= MaxPending {
		r.pending = r.pending[1:] // append moves the live ones to a new array in time
		r.dropped++
	}
	r.pending = append(r.pending, o)
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// run writes pending records until Close: at once when they are queued,
// after a growing pause when a write failed.
func (r *Recorder) run() {
	defer close(r.done)
	var (
		retry  *time.Timer
		retryC <-chan time.Time
		delay  time.Duration
	)
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	for {
		select {
		case <-r.quit:
			r.flush() // a last attempt; Close bounds it
			return
		case <-r.wake:
			if retryC != nil {
				continue // the retry timer writes these too
			}
		case <-retryC:
			retryC = nil
		}
		if r.flush() {
			delay = 0
			continue
		}
		delay = min(max(2*delay, r.o.RetryMin), r.o.RetryMax)
		retry = time.NewTimer(delay)
		retryC = retry.C
	}
}

// flush writes every pending record in one Update. It reports whether
// nothing is left from before the call.
func (r *Recorder) flush() bool {
	r.mu.Lock()
	batch := slices.Clone(r.pending)
	dropped := r.dropped
	r.dropped = 0
	r.mu.Unlock()
	if dropped > 0 {
		r.log.Warn("lease history: too many records waiting, dropped the oldest", zap.Int("dropped", dropped))
	}
	if len(batch) == 0 {
		return true
	}
	ctx, cancel := context.WithTimeout(r.ctx, r.o.WriteTimeout)
	err := r.store.Update(ctx, func(d *Document) {
		for _, o := range batch {
			o.apply(d, r.o.Node)
		}
	})
	cancel()

	// OnEvent waits for r.mu (under the Elector's lock): nothing slower
	// than bookkeeping happens under it, the log lines come after.
	r.mu.Lock()
	failures, pending := r.failures, len(r.pending)
	if err != nil {
		r.failures++
	} else {
		last := batch[len(batch)-1].seq
		i := 0
		for i < len(r.pending) && r.pending[i].seq <= last {
			i++
		}
		r.pending = r.pending[i:]
		r.failures = 0
	}
	r.mu.Unlock()
	switch {
	case err != nil && failures == 0:
		r.log.Warn("could not write the lease history; retrying in the background (the election does not wait for it)",
			zap.String("store", r.store.String()), zap.Int("pending", pending), zap.Error(err))
	case err == nil && failures > 0:
		r.log.Info("lease history written again", zap.Int("failed_attempts", failures))
	}
	return err == nil
}

type opKind int

const (
	opBegin opKind = iota
	opEnd
	opFailsafeStart
	opFailsafeEnd
)

// op is one record of this node, applied to the Document in order. Every
// op is idempotent, so a batch whose write outcome was unknown can be
// applied again.
type op struct {
	seq   uint64
	kind  opKind
	term  uint64
	at    time.Time
	since time.Time // opFailsafeEnd: the period's start
	how   string
}

func (o op) apply(d *Document, node string) {
	switch o.kind {
	case opBegin:
		d.Begin(o.term, node, o.at, o.how)
	case opEnd:
		d.End(o.term, node, o.at, o.how)
	case opFailsafeStart:
		d.FailsafeStart(o.term, node, o.at)
	case opFailsafeEnd:
		d.FailsafeEnd(o.term, o.since, o.at)
	}
}
