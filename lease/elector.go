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
	// OnState, if set, receives every state the Elector publishes (each
	// value Changed announces), synchronously: after the fence changed and
	// before anyone can observe the new state. It is called with the
	// Elector's lock held and must return quickly without calling the
	// Elector. With OnState set the Elector logs its role changes at debug
	// level ("election role changed"): the owner of the node's role logs the
	// transitions people see.
	OnState func(State)
	// Now is the clock for Fence and for the times in State. Nil means
	// time.Now. It must advance at the rate of the runtime's timers; its
	// values should carry a monotonic reading (time.Now's do).
	Now func() time.Time
	// Wall, if set, is the wall clock (Unix ns) that Fence checks beside
	// Now (tests); nil: the wall reading of Now's values. See clock.go.
	Wall func() int64
	// ClockJump: when the wall clock and Now disagree about the time
	// elapsed by more than this (a VM pause a stopped monotonic clock hid,
	// or a wall-clock step), the fence goes off until a renew sent
	// afterwards succeeds. Zero means DefaultClockJump; negative turns the
	// detector off (Fence still checks both clocks).
	ClockJump time.Duration

	// IDs, with a Lock that implements Keyed, keeps the lease ID durable
	// on this host: before every call that gives the lease away (release,
	// change) the Elector retires the ID through it and afterwards makes
	// the Lock use the next one. If retiring fails, that call is not made
	// (the lease then expires on its own). See package internal/instance.
	IDs IDStore
	// Inherited says that the Lock's lease ID was used by an earlier,
	// now dead process of this node, which may have left the lease held.
	// If the node becomes eligible, its first Acquire takes that lease over
	// at once (Record.Resumed, reason "lease taken over from this node's
	// previous process"). If it is still not eligible InheritGrace after
	// Start (its backend is not healthy), the Elector releases that lease
	// once, so another node acquires it without waiting for its expiry.
	Inherited    bool
	InheritGrace time.Duration
	// HolderAlive, if set, asks the holder over a direct link whether it is
	// still active under rec's term. While it says yes, a standby skips its
	// storage calls, but makes one at least every Duration; a push (Nudge,
	// NoteHolder) or a "no" brings the storage calls back at once. It must
	// honour ctx and return quickly; it is called without any lock held.
	// Skipping a call can only delay this node's own acquisition, never
	// make it serve.
	HolderAlive func(ctx context.Context, rec Record) bool

	// Failsafe, if set, keeps the active serving through a storage outage
	// (see the package documentation, "Failsafe"): after a renew fails for
	// any reason but ErrLost, the active asks every peer to promise not to
	// take the lease and not to serve for window (on the peer's own clock,
	// from when it answered). It must return true only if every peer
	// promised; then the fence is extended to the promise round's send
	// time plus RenewDeadline, as a renew would. It must honour ctx.
	Failsafe func(ctx context.Context, window time.Duration) bool
	// Withdraw, if set, tells the peers that their promises are void (the
	// storage answers again, or this node stopped being active). It must
	// return at once (send in the background).
	Withdraw func()
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
	// Failsafe is true while the active serves on its peers' promises
	// instead of its lease (FailsafeSince: when it started).
	Failsafe      bool
	FailsafeSince time.Time
	// PromisedTo names the node this node has promised not to take the
	// lease from, until PromisedUntil; "" when no promise holds.
	PromisedTo    string
	PromisedUntil time.Time
}

// EventKind names what an Event reports.
type EventKind int

// The events of Config.OnEvent.
const (
	EventAcquired    EventKind = iota + 1 // the lease was acquired (Term, Holder; Reason: how, as in the role change)
	EventRenewed                          // a renew succeeded (Latency)
	EventRenewFailed                      // a renew failed but the lease is still valid (Latency, Err)
	EventDemoted                          // the node stopped being active (Reason, Term)
	EventReleased                         // a voluntary release succeeded (Term): the lease is free
	EventHandedOver                       // the lease was changed to a named node's ID (Reason, Term)
	EventFailsafe                         // failsafe entered (Err: the storage error) or, with Err nil, left (Latency: how long)
	EventClockJump                        // the clocks disagreed (Latency: monotonic minus wall elapsed): fence off until a renew
)

// Event is one report to Config.OnEvent.
type Event struct {
	Kind    EventKind
	Term    uint64
	Latency time.Duration
	Reason  string
	Err     error
	// Holder is the new holder record of EventAcquired.
	Holder Record
}

func (e *Elector) emit(ev Event) {
	if e.cfg.OnEvent != nil {
		e.cfg.OnEvent(ev)
	}
}

// fenceValue is what the request path reads: immutable once published.
type fenceValue struct {
	term  uint64
	until stamp // on both clocks (clock.go)
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
	stopped      bool               // Stop called or Start's ctx done: never active again
	leaving      string             // Leave called: out of candidacy for good, still reading the holder
	lastErrClass string             // "config" or "storage": for the log level
	cancel       context.CancelFunc // cancels the loop's ctx
	hold         leadership
	op           followerCall
	seek         seekWindow
	link         linkState
	clock        clockState
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
	if cfg.ClockJump == 0 {
		cfg.ClockJump = DefaultClockJump
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
	if cfg.Inherited {
		if _, ok := lock.(Keyed); !ok {
			return nil, errors.New("new elector: an inherited lease id needs a lock that implements Keyed")
		}
		e.link.inherited = true
	}
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
		e.link.inheritAfter = e.now().Add(e.cfg.InheritGrace)
		e.mu.Unlock()
		go e.run(ctx)
		go e.watchClocks(ctx)
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
	if f == nil || !e.stamp().before(f.until) {
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
	if !e.hold.held || e.stopped {
		e.mu.Unlock()
		return ErrNotActive
	}
	why := "step-down"
	if reason != "" {
		why += ": " + reason
	}
	e.requestDemotionLocked(why)
	ch := make(chan struct{})
	e.hold.waiters = append(e.hold.waiters, ch)
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
	if e.hold.held {
		e.requestDemotionLocked(reason)
		ch = make(chan struct{})
		e.hold.waiters = append(e.hold.waiters, ch)
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
	if !e.hold.held {
		return
	}
	e.fence.Store(nil)
	if e.hold.pending == "" {
		e.hold.pending = reason
	}
}

// eligibilityChangedLocked publishes the new inputs and interrupts a
// follower call so that the loop re-evaluates at once.
func (e *Elector) eligibilityChangedLocked() {
	e.publishLocked()
	if e.op.cancel != nil {
		e.op.aborted = true
		e.op.cancel()
	}
}

func (e *Elector) kick() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// publishLocked announces the state as it is now (Changed, Watch) and
// hands it to Config.OnState: call it after the state's change, never
// before.
func (e *Elector) publishLocked() {
	close(e.changed)
	e.changed = make(chan struct{})
	if e.cfg.OnState != nil {
		e.cfg.OnState(e.st)
	}
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
	holder := ""
	if e.st.HolderKnown {
		holder = e.st.Holder.Holder
	}
	msg, level := "role changed", zap.InfoLevel
	if e.cfg.OnState != nil {
		msg, level = "election role changed", zap.DebugLevel
	}
	e.log.Log(level, msg,
		zap.Stringer("from", from),
		zap.Stringer("to", role),
		zap.String("reason", reason),
		zap.Uint64("term", e.st.Term),
		zap.String("holder", holder))
}

func (e *Elector) markStoppedLocked(reason string) {
	if e.stopped {
		return
	}
	e.fence.Store(nil)
	e.stopped = true
	e.setRoleLocked(RoleStopping, reason)
	if e.op.cancel != nil {
		e.op.cancel()
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
	case e.promisedLocked(now):
		return RoleStandby, "promised " + e.link.promisedTo + " to stand by (its failsafe)", true
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
