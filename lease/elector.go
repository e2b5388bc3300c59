package lease

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// ErrNotActive is returned by StepDown when this node does not hold the
// lease.
var ErrNotActive = errors.New("lease: not active")

// DefaultReleaseTimeout bounds the Release call made on a voluntary demotion
// or on Stop when Config.ReleaseTimeout is zero.
const DefaultReleaseTimeout = 2 * time.Second

// Config is the Elector's timing and identity. All durations are measured on
// the local monotonic clock.
type Config struct {
	// NodeName is written to the holder record. Required.
	NodeName string
	// AdvertiseURL is written to the holder record: where this node accepts
	// forwarded requests. Optional.
	AdvertiseURL string

	// Duration is the lease duration requested from the storage (its TTL).
	Duration time.Duration
	// RenewInterval is the time between renew attempts of the active node
	// (measured from one attempt's send time to the next). It also bounds
	// each single Acquire, Read and Renew call.
	RenewInterval time.Duration
	// RenewDeadline is how long the active node stays active after the send
	// time of its last successful acquire or renew. It must be shorter than
	// Duration, so that the node stops before the storage could give the
	// lease to somebody else.
	RenewDeadline time.Duration
	// RetryInterval is the time between Acquire attempts of a candidate or
	// standby (and between Read calls of a node that is not a candidate,
	// except while Seek asks for more). It also bounds the pause after a
	// failed renew.
	RetryInterval time.Duration
	// CandidacyBackoff is how long a node stays out of candidacy after any
	// demotion (anti-flap; lets another node win a planned switchover).
	CandidacyBackoff time.Duration
	// ReleaseTimeout bounds the Release call on a voluntary demotion or on
	// Stop. Zero means DefaultReleaseTimeout.
	ReleaseTimeout time.Duration
	// OnEvent, if set, is called for every acquisition, renew attempt and
	// demotion (for metrics). It is called from the election loop and must
	// return quickly without calling the Elector.
	OnEvent func(Event)
	// Now is the clock for Fence and for the times in State. Nil means
	// time.Now. It must advance at the rate of the runtime's timers; its
	// values should carry a monotonic reading (time.Now's do).
	Now func() time.Time
}

func (c *Config) validate() error {
	switch {
	case c.NodeName == "":
		return errors.New("node name is empty")
	case c.RetryInterval <= 0:
		return fmt.Errorf("retry interval %s must be positive", c.RetryInterval)
	case c.RenewInterval <= 0:
		return fmt.Errorf("renew interval %s must be positive", c.RenewInterval)
	case c.RenewInterval >= c.RenewDeadline:
		return fmt.Errorf("renew interval %s must be shorter than renew deadline %s", c.RenewInterval, c.RenewDeadline)
	case c.RenewDeadline >= c.Duration:
		return fmt.Errorf("renew deadline %s must be shorter than lease duration %s", c.RenewDeadline, c.Duration)
	case 2*c.RenewInterval > c.RenewDeadline:
		return fmt.Errorf("renew deadline %s must leave room for two renew attempts at renew interval %s (at least %s)",
			c.RenewDeadline, c.RenewInterval, 2*c.RenewInterval)
	case c.CandidacyBackoff < 0:
		return fmt.Errorf("candidacy back-off %s must not be negative", c.CandidacyBackoff)
	case c.ReleaseTimeout < 0:
		return fmt.Errorf("release timeout %s must not be negative", c.ReleaseTimeout)
	}
	return nil
}

// State is a snapshot of the Elector, published as a "latest value": see
// Elector.Changed.
type State struct {
	// Role is the current role; Reason and Since say why and when the last
	// role transition happened.
	Role   Role
	Reason string
	Since  time.Time
	// Term is our term while active, else the last term seen in the storage.
	Term uint64
	// Holder is the last known holder record (from an Acquire that answered
	// ErrHeld, from a Read, or ourselves while active). HolderKnown is false
	// when no holder is known (after a demotion, or when the storage says
	// nobody holds the lease).
	Holder      Record
	HolderKnown bool
	// ValidUntil is, while active, the send time of the last successful
	// acquire or renew plus RenewDeadline: the instant Fence stops
	// answering ok. Zero when not active.
	ValidUntil time.Time
	// LastRenew is when the last successful acquire or renew answered and
	// RenewLatency how long that call took.
	LastRenew    time.Time
	RenewLatency time.Duration
	// BackoffUntil is the end of the candidacy back-off after the last
	// demotion.
	BackoffUntil time.Time
	// Healthy and Maintenance are the inputs last given to SetHealthy and
	// SetMaintenance.
	Healthy     bool
	Maintenance bool
	// LastError is the text of the last storage error (ErrHeld is not an
	// error); "" when the last storage call succeeded.
	LastError string
}

// EventKind names what an Event reports.
type EventKind int

// The events of Config.OnEvent.
const (
	EventAcquired    EventKind = iota + 1 // the lease was acquired (Term)
	EventRenewed                          // a renew succeeded (Latency)
	EventRenewFailed                      // a renew failed but the lease is still valid (Latency, Err)
	EventDemoted                          // the node stopped being active (Reason, Term)
)

// Event is one report to Config.OnEvent.
type Event struct {
	Kind    EventKind
	Term    uint64
	Latency time.Duration
	Reason  string
	Err     error
}

func (e *Elector) emit(ev Event) {
	if e.cfg.OnEvent != nil {
		e.cfg.OnEvent(ev)
	}
}

// fenceValue is what the request path reads: immutable once published.
type fenceValue struct {
	term  uint64
	until time.Time
}

// Elector runs the election for one node: it acquires the lease while the
// node is eligible, renews it under a deadline, and demotes itself on
// failure, on request, or on Stop. See the package documentation for what it
// guarantees.
type Elector struct {
	lock Lock
	cfg  Config
	log  *zap.Logger
	now  func() time.Time
	self Record

	// fence is nil unless active. Written only under mu, read lock-free.
	fence atomic.Pointer[fenceValue]

	wake      chan struct{} // capacity 1: eligibility changed
	done      chan struct{} // closed when the loop and its calls ended
	startOnce sync.Once
	stopOnce  sync.Once
	ops       sync.WaitGroup // renew calls running beside the loop

	mu           sync.Mutex
	st           State
	changed      chan struct{}
	healthReason string
	leading      bool               // the loop holds the lease (fence may already be off)
	pending      string             // voluntary demotion requested while leading
	waiters      []chan struct{}    // StepDown calls waiting for the demotion
	stopped      bool               // Stop called or Start's ctx done: never active again
	leaving      string             // Leave called: out of candidacy for good, still reading the holder
	cancel       context.CancelFunc // cancels the loop's ctx
	opCancel     context.CancelFunc // cancels the loop's current Acquire or Read
	opAborted    bool               // opCancel was called by an eligibility change
	lastErrClass string             // "config" or "storage": for the log level
	seekUntil    time.Time          // Seek's window: read the holder every SeekInterval
	handover     time.Time          // the last demotion or change of the holder seen: Seek works for Duration after it
}

// SeekInterval is how often a node out of candidacy reads the holder record
// while Seek asks it to (RetryInterval if that is shorter).
const SeekInterval = 200 * time.Millisecond

// Seek asks a node that is out of candidacy (demoted and in its back-off,
// unhealthy, in maintenance, leaving) to find the new holder quickly: for
// the next window (at least RetryInterval), until a holder other than this
// node with an advertise URL is known, it reads the holder record every
// SeekInterval instead of every RetryInterval. The data plane calls it when
// a request waits for an active node to forward to: after a switchover the
// old active then learns of the new one about SeekInterval after its
// acquisition, not up to RetryInterval.
//
// The reads stay bounded: they happen only while requests wait, and only
// within Duration of the node's last demotion or of the last change of
// holder it saw (a handover is over by then), so an outage with no active
// node at all (both backends down, storage down) costs the usual read per
// RetryInterval. A candidate is not affected: it learns the holder from
// its own Acquire attempts every RetryInterval.
func (e *Elector) Seek(window time.Duration) {
	e.mu.Lock()
	now := e.now()
	open := now.Before(e.seekUntil)
	if until := now.Add(max(window, e.cfg.RetryInterval)); until.After(e.seekUntil) {
		e.seekUntil = until
	}
	_, _, passive := e.passiveRoleLocked(now)
	wake := !open && passive && e.seekingLocked(now)
	e.mu.Unlock()
	if wake {
		e.kick() // read now rather than at the end of the current pause
	}
}

// seekingLocked reports whether Seek's window is open, a handover is recent
// and the node still needs to learn where the active node is.
func (e *Elector) seekingLocked(now time.Time) bool {
	h := e.st.Holder
	return now.Before(e.seekUntil) && now.Before(e.handover.Add(e.cfg.Duration)) &&
		!(e.st.HolderKnown && h.Holder != e.cfg.NodeName && h.AdvertiseURL != "")
}

// NewElector checks cfg and returns an Elector that is not yet running. The
// node is not a candidate until SetHealthy(true, ...) is called.
func NewElector(lock Lock, cfg Config, log *zap.Logger) (*Elector, error) {
	if lock == nil {
		return nil, errors.New("new elector: nil lock")
	}
	if log == nil {
		return nil, errors.New("new elector: nil logger")
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("new elector: %w", err)
	}
	if cfg.ReleaseTimeout == 0 {
		cfg.ReleaseTimeout = DefaultReleaseTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	e := &Elector{
		lock:    lock,
		cfg:     cfg,
		log:     log.Named("lease"),
		now:     cfg.Now,
		self:    Record{Holder: cfg.NodeName, AdvertiseURL: cfg.AdvertiseURL},
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}
	e.st = State{Role: RoleUnhealthy, Reason: "no health report yet", Since: e.now()}
	return e, nil
}

// Start starts the election loop. It returns at once. Calling it again, or
// after Stop, does nothing. When ctx is done the Elector stops as if Stop
// had been called (Stop must still be called to wait for the end).
func (e *Elector) Start(ctx context.Context) {
	e.startOnce.Do(func() {
		ctx, cancel := context.WithCancel(ctx)
		e.mu.Lock()
		e.cancel = cancel
		e.mu.Unlock()
		go e.run(ctx)
	})
}

// Stop fences the node off at once, sets the role to stopping, releases the
// lease if it is held (with a fresh context bounded by ReleaseTimeout) and
// waits until the loop and every storage call it started have returned. It
// is idempotent and safe to call concurrently and without Start.
func (e *Elector) Stop() {
	e.stopOnce.Do(func() {
		e.startOnce.Do(func() { close(e.done) }) // never started: nothing to join
		e.mu.Lock()
		e.markStoppedLocked("stopped")
		cancel := e.cancel
		e.mu.Unlock()
		if cancel != nil {
			cancel()
		}
	})
	<-e.done
}

// Fence is the request-path check: it returns the current term and true
// only if this node is active and its own-clock lease validity (State's
// ValidUntil) has not passed. It takes no lock and does not allocate, and
// it does not depend on the election loop having run: a node that wakes up
// from a freeze past its deadline gets ok == false on its first request.
func (e *Elector) Fence() (term uint64, ok bool) {
	f := e.fence.Load()
	if f == nil || !e.now().Before(f.until) {
		return 0, false
	}
	return f.term, true
}

// State returns the latest snapshot.
func (e *Elector) State() State {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.st
}

// Changed returns a channel that is closed at the next change of State.
// To not miss a change, take the channel before reading the state (or use
// Watch): ch := e.Changed(); s := e.State(); ...; <-ch. Changes that happen
// while nobody waits are coalesced; the Elector never blocks on readers.
func (e *Elector) Changed() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.changed
}

// Watch returns the latest State and a channel closed at the next change
// after it, atomically.
func (e *Elector) Watch() (State, <-chan struct{}) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.st, e.changed
}

// SetHealthy reports the local backend's health. It never blocks. Until the
// first call with ok == true the node is not a candidate. ok == false while
// active fences the node off before returning, then the loop releases the
// lease and applies the candidacy back-off (reason "backend unhealthy:
// <reason>").
func (e *Elector) SetHealthy(ok bool, reason string) {
	e.mu.Lock()
	changed := e.st.Healthy != ok
	e.st.Healthy = ok
	e.healthReason = reason
	if !ok {
		e.requestDemotionLocked("backend unhealthy: " + reason)
	}
	if changed {
		e.eligibilityChangedLocked()
	}
	e.mu.Unlock()
	if changed {
		e.kick()
	}
}

// SetMaintenance sets or clears the operator hold. Setting it while active
// fences the node off before returning and makes the loop step down (release
// and back-off). While it is set the role is maintenance and the node never
// tries to acquire.
func (e *Elector) SetMaintenance(on bool) {
	e.mu.Lock()
	changed := e.st.Maintenance != on
	e.st.Maintenance = on
	if on {
		e.requestDemotionLocked("maintenance")
	}
	if changed {
		e.eligibilityChangedLocked()
	}
	e.mu.Unlock()
	if changed {
		e.kick()
	}
}

// StepDown gives the lease up for a planned switchover: it fences the node
// off at once, then waits until the loop has released the lease (bounded by
// ReleaseTimeout) and started the candidacy back-off, so that another node
// wins the next round. It returns ErrNotActive if the node is not active. A
// failed release is not returned: it is logged and shown in
// State.LastError, and the lease then expires on its own.
func (e *Elector) StepDown(reason string) error {
	e.mu.Lock()
	if !e.leading || e.stopped {
		e.mu.Unlock()
		return ErrNotActive
	}
	why := "step-down"
	if reason != "" {
		why += ": " + reason
	}
	e.requestDemotionLocked(why)
	ch := make(chan struct{})
	e.waiters = append(e.waiters, ch)
	e.mu.Unlock()
	e.kick()
	select {
	case <-ch:
	case <-e.done:
	}
	return nil
}

// Leave is the first step of a process stop: it fences the node off at
// once, releases the lease if held (waiting for the release like StepDown,
// bounded by ReleaseTimeout) and keeps the node out of candidacy for good.
// Unlike Stop, the loop goes on reading the holder record, so the data plane
// can still forward requests to the new active node while the process keeps
// its listeners open. Stop ends it. Leave is idempotent.
func (e *Elector) Leave(reason string) {
	if reason == "" {
		reason = "leaving"
	}
	e.mu.Lock()
	if e.stopped || e.leaving != "" {
		e.mu.Unlock()
		return
	}
	e.leaving = reason
	var ch chan struct{}
	if e.leading {
		e.requestDemotionLocked(reason)
		ch = make(chan struct{})
		e.waiters = append(e.waiters, ch)
	}
	e.eligibilityChangedLocked()
	e.mu.Unlock()
	e.kick()
	if ch != nil {
		select {
		case <-ch:
		case <-e.done:
		}
	}
}

// requestDemotionLocked fences off at once and asks the loop to demote
// voluntarily. The first reason wins.
func (e *Elector) requestDemotionLocked(reason string) {
	if !e.leading {
		return
	}
	e.fence.Store(nil)
	if e.pending == "" {
		e.pending = reason
	}
}

// eligibilityChangedLocked publishes the new inputs and interrupts a
// follower call so that the loop re-evaluates at once.
func (e *Elector) eligibilityChangedLocked() {
	e.publishLocked()
	if e.opCancel != nil {
		e.opAborted = true
		e.opCancel()
	}
}

func (e *Elector) kick() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *Elector) publishLocked() {
	close(e.changed)
	e.changed = make(chan struct{})
}

// setRoleLocked moves to role and writes the one log line of the
// transition. After Stop only the stopping role is accepted.
func (e *Elector) setRoleLocked(role Role, reason string) {
	if e.st.Role == role || (e.stopped && role != RoleStopping) {
		return
	}
	from := e.st.Role
	e.st.Role, e.st.Reason, e.st.Since = role, reason, e.now()
	e.publishLocked()
	e.log.Info("role changed",
		zap.Stringer("from", from),
		zap.Stringer("to", role),
		zap.String("reason", reason),
		zap.Uint64("term", e.st.Term))
}

func (e *Elector) markStoppedLocked(reason string) {
	if e.stopped {
		return
	}
	e.fence.Store(nil)
	e.stopped = true
	e.setRoleLocked(RoleStopping, reason)
	if e.opCancel != nil {
		e.opCancel()
	}
}

// passiveRoleLocked returns the role of a node that must not be a candidate
// now, or ok == false if it may compete.
func (e *Elector) passiveRoleLocked(now time.Time) (role Role, reason string, passive bool) {
	switch {
	case e.stopped:
		return RoleStopping, "stopped", true
	case e.leaving != "":
		return RoleStopping, e.leaving, true
	case !e.st.Healthy:
		return RoleUnhealthy, "backend unhealthy: " + e.healthReason, true
	case e.st.Maintenance:
		return RoleMaintenance, "maintenance", true
	case now.Before(e.st.BackoffUntil):
		return RoleStandby, "candidacy back-off", true
	}
	return 0, "", false
}

// noteErr records a storage error; it logs only when the error text
// changes, so a failing storage produces one line, not one per retry.
func (e *Elector) noteErr(op string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	text := err.Error()
	if text == e.st.LastError {
		return
	}
	e.st.LastError = text
	e.publishLocked()
	if errors.Is(err, ErrConfig) {
		e.lastErrClass = "config"
		e.log.Error("lease storage misconfigured", zap.String("op", op), zap.Error(err))
		return
	}
	e.lastErrClass = "storage"
	e.log.Warn("lease storage error", zap.String("op", op), zap.Error(err))
}

// noteOKLocked clears LastError after a successful storage call.
func (e *Elector) noteOKLocked() {
	if e.st.LastError == "" {
		return
	}
	e.st.LastError = ""
	e.publishLocked()
	e.log.Info("lease storage recovered", zap.String("after", e.lastErrClass+" error"))
}

func (e *Elector) run(ctx context.Context) {
	defer func() {
		e.ops.Wait()
		close(e.done)
	}()
	defer func() {
		e.mu.Lock()
		e.markStoppedLocked("stopped")
		e.mu.Unlock()
	}()
	for ctx.Err() == nil {
		// A wake-up that arrived before this point is seen by the state
		// read below; drop it so that it does not cut the next pause short.
		select {
		case <-e.wake:
		default:
		}
		e.mu.Lock()
		now := e.now()
		if role, reason, passive := e.passiveRoleLocked(now); passive {
			e.setRoleLocked(role, reason)
			wait := e.cfg.RetryInterval
			if left := e.st.BackoffUntil.Sub(now); left > 0 && left < wait {
				wait = left
			}
			e.mu.Unlock()
			e.refreshHolder(ctx)
			e.mu.Lock()
			if e.seekingLocked(now) {
				wait = min(wait, SeekInterval)
			}
			e.mu.Unlock()
			e.sleep(ctx, now.Add(wait))
			continue
		}
		switch {
		case e.st.LastError != "":
			e.setRoleLocked(RoleCandidate, "storage error")
		case e.st.HolderKnown && e.st.Holder.Holder != e.cfg.NodeName:
			// Another node is known to hold the lease: wait as a standby
			// rather than flipping to candidate for every attempt.
			e.setRoleLocked(RoleStandby, heldBy(e.st.Holder.Holder))
		default:
			e.setRoleLocked(RoleCandidate, "no holder known")
		}
		e.mu.Unlock()

		sent := e.now()
		var rec Record
		aborted, err := e.call(ctx, true, func(ctx context.Context) error {
			var err error
			rec, err = e.lock.Acquire(ctx, e.self, e.cfg.Duration)
			return err
		})
		switch {
		case err == nil:
			e.lead(ctx, rec, sent, e.now())
		case aborted || ctx.Err() != nil:
			// Eligibility changed or stopping: re-evaluate at once.
			continue
		case errors.Is(err, ErrHeld):
			e.sawHolder(rec, true)
		default:
			e.noteErr("acquire", err)
			e.mu.Lock()
			e.setRoleLocked(RoleCandidate, "storage error")
			e.mu.Unlock()
		}
		e.sleep(ctx, sent.Add(e.cfg.RetryInterval))
	}
}

// call runs one follower call (Acquire or Read) bounded by RenewInterval.
// An eligibility change cancels it (aborted == true). With needEligible the
// call is not made unless the node may compete, checked under the same lock
// that eligibility changes take, so no Acquire starts after SetHealthy(false)
// or SetMaintenance(true) returned.
func (e *Elector) call(ctx context.Context, needEligible bool, fn func(context.Context) error) (aborted bool, err error) {
	opCtx, cancel := context.WithTimeout(ctx, e.cfg.RenewInterval)
	defer cancel()
	e.mu.Lock()
	if needEligible {
		if _, _, passive := e.passiveRoleLocked(e.now()); passive {
			e.mu.Unlock()
			return true, context.Canceled
		}
	}
	e.opCancel, e.opAborted = cancel, false
	e.mu.Unlock()

	err = fn(opCtx)

	e.mu.Lock()
	aborted = e.opAborted
	e.opCancel, e.opAborted = nil, false
	e.mu.Unlock()
	return aborted && err != nil, err
}

// refreshHolder reads the holder record, so that a node that is not a
// candidate still knows where the active node is.
func (e *Elector) refreshHolder(ctx context.Context) {
	var (
		rec Record
		ok  bool
	)
	aborted, err := e.call(ctx, false, func(ctx context.Context) error {
		var err error
		rec, ok, err = e.lock.Read(ctx)
		return err
	})
	switch {
	case err == nil:
		e.sawHolder(rec, ok)
	case aborted || ctx.Err() != nil:
	default:
		e.noteErr("read", err)
	}
}

// sawHolder records what the storage said about the holder. From an
// Acquire's ErrHeld answer (held == true) it also makes the node a standby.
func (e *Elector) sawHolder(rec Record, held bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.noteOKLocked()
	// Without a holder the record is not kept (State.Holder stays zero), so
	// only the term can change then.
	if held != e.st.HolderKnown || rec.Term != e.st.Term || held && !sameHolder(rec, e.st.Holder) {
		e.handover = e.now()
		e.publishLocked()
	}
	e.st.Term = rec.Term
	if held {
		e.st.Holder, e.st.HolderKnown = rec, true
	} else {
		e.st.Holder, e.st.HolderKnown = Record{}, false
	}
	if held && e.st.Role == RoleCandidate && rec.Holder != e.cfg.NodeName {
		e.setRoleLocked(RoleStandby, heldBy(rec.Holder))
	}
}

// heldBy is the reason logged when another node holds the lease. A holder
// that has just acquired it may not have written its name yet.
func heldBy(holder string) string {
	if holder == "" {
		return "lease held by another node (name not yet written)"
	}
	return "lease held by " + holder
}

func sameHolder(a, b Record) bool {
	return a.Holder == b.Holder && a.AdvertiseURL == b.AdvertiseURL && a.Term == b.Term && a.AcquiredAt.Equal(b.AcquiredAt)
}

// sleep waits until the given instant of e.now's clock, an eligibility
// change, or ctx's end.
func (e *Elector) sleep(ctx context.Context, until time.Time) {
	d := until.Sub(e.now())
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-e.wake:
	case <-ctx.Done():
	}
}

type renewResult struct {
	sent, done time.Time
	err        error
}

// lead holds the lease acquired at sent until it is lost, given up or the
// Elector stops.
func (e *Elector) lead(ctx context.Context, rec Record, sent, done time.Time) {
	deadline := sent.Add(e.cfg.RenewDeadline)
	if !e.becomeActive(rec, sent, done, deadline) {
		// Eligibility changed (or Stop) while the acquire was in flight:
		// the node never served; give the lease back at once.
		e.demote(ctx, "", true, nil, nil)
		return
	}
	var (
		deadlineT = time.NewTimer(deadline.Sub(e.now()))
		renewT    = time.NewTimer(sent.Add(e.cfg.RenewInterval).Sub(e.now()))
		inflight  chan renewResult
		cancelOp  context.CancelFunc = func() {}
		reason    string
		voluntary bool
	)
	defer deadlineT.Stop()
	defer renewT.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			reason, voluntary = "stopped", true
			break loop
		case <-e.wake:
			e.mu.Lock()
			reason = e.pending
			e.mu.Unlock()
			if reason != "" {
				voluntary = true
				break loop
			}
		case <-deadlineT.C:
			reason = "renew deadline passed"
			break loop
		case <-renewT.C:
			// Each attempt is bounded by the interval and by the deadline:
			// a renew never outlives the time it could still be useful.
			now := e.now()
			left := deadline.Sub(now)
			if left <= 0 {
				continue // the deadline timer fires now
			}
			var opCtx context.Context
			opCtx, cancelOp = context.WithTimeout(ctx, min(e.cfg.RenewInterval, left))
			inflight = make(chan renewResult, 1)
			e.ops.Add(1)
			go func(ch chan<- renewResult) {
				defer e.ops.Done()
				err := e.lock.Renew(opCtx, e.cfg.Duration)
				ch <- renewResult{sent: now, done: e.now(), err: err}
			}(inflight)
		case r := <-inflight:
			inflight = nil
			cancelOp()
			switch {
			case r.err == nil:
				deadline = r.sent.Add(e.cfg.RenewDeadline)
				e.renewed(r, deadline)
				deadlineT.Reset(deadline.Sub(e.now()))
				renewT.Reset(r.sent.Add(e.cfg.RenewInterval).Sub(e.now()))
			case errors.Is(r.err, ErrLost):
				e.emit(Event{Kind: EventRenewFailed, Latency: r.done.Sub(r.sent), Err: r.err})
				reason = "lease lost"
				break loop
			default:
				e.emit(Event{Kind: EventRenewFailed, Latency: r.done.Sub(r.sent), Err: r.err})
				e.noteErr("renew", r.err)
				next := r.sent.Add(e.cfg.RenewInterval)
				if retry := r.done.Add(e.cfg.RetryInterval); retry.Before(next) {
					next = retry
				}
				renewT.Reset(next.Sub(e.now()))
			}
		}
	}
	e.demote(ctx, reason, voluntary, inflight, cancelOp)
}

// becomeActive publishes the fence unless the node became ineligible while
// acquiring.
func (e *Elector) becomeActive(rec Record, sent, done, deadline time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.noteOKLocked()
	e.st.Term = rec.Term
	if _, _, passive := e.passiveRoleLocked(done); passive {
		return false
	}
	e.leading = true
	e.pending = ""
	e.fence.Store(&fenceValue{term: rec.Term, until: deadline})
	e.st.Holder, e.st.HolderKnown = rec, true
	e.st.ValidUntil = deadline
	e.st.LastRenew, e.st.RenewLatency = done, done.Sub(sent)
	e.setRoleLocked(RoleActive, "lease acquired")
	e.publishLocked()
	e.emit(Event{Kind: EventAcquired, Term: rec.Term, Latency: done.Sub(sent)})
	return true
}

// renewed moves the fence deadline after a successful renew, unless a
// demotion is already under way.
func (e *Elector) renewed(r renewResult, deadline time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.noteOKLocked()
	if e.stopped || e.pending != "" {
		return
	}
	e.fence.Store(&fenceValue{term: e.st.Term, until: deadline})
	e.st.ValidUntil = deadline
	e.st.LastRenew, e.st.RenewLatency = r.done, r.done.Sub(r.sent)
	e.publishLocked()
	e.emit(Event{Kind: EventRenewed, Latency: r.done.Sub(r.sent)})
}

// demote ends leadership: fence off first, then (voluntary only) release
// with a fresh context bounded by ReleaseTimeout, then the candidacy
// back-off, then the new role. reason == "" means the node never became
// active (no back-off, no role change).
func (e *Elector) demote(ctx context.Context, reason string, voluntary bool, inflight <-chan renewResult, cancelRenew context.CancelFunc) {
	e.mu.Lock()
	e.fence.Store(nil)
	if ctx.Err() != nil {
		e.markStoppedLocked("stopped")
	}
	e.leading = false
	waiters := e.waiters
	e.waiters = nil
	e.mu.Unlock()
	if cancelRenew != nil {
		cancelRenew()
	}

	if voluntary {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.ReleaseTimeout)
		if inflight != nil {
			// The renew was cancelled; let it return before releasing, so
			// the release is the last call on the lease.
			select {
			case <-inflight:
			case <-rctx.Done():
			}
		}
		if err := e.lock.Release(rctx); err != nil {
			e.noteErr("release", err)
		}
		cancel()
	}

	e.mu.Lock()
	e.pending = ""
	if reason != "" {
		now := e.now()
		e.handover = now
		if e.cfg.CandidacyBackoff > 0 {
			e.st.BackoffUntil = now.Add(e.cfg.CandidacyBackoff)
		}
		e.st.ValidUntil = time.Time{}
		e.st.Holder, e.st.HolderKnown = Record{}, false
		role, _, passive := e.passiveRoleLocked(now)
		if !passive {
			role = RoleCandidate // zero back-off and still eligible
		}
		e.setRoleLocked(role, reason)
		e.publishLocked()
		e.emit(Event{Kind: EventDemoted, Term: e.st.Term, Reason: reason})
	}
	e.mu.Unlock()
	for _, ch := range waiters {
		close(ch)
	}
}
