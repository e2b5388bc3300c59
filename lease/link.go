package lease

// What a direct link between the nodes adds to the election: pushes that
// wake a standby (Nudge) or name the new holder (NoteHolder), a standby
// that skips storage calls while the holder vouches for itself
// (Config.HolderAlive), a handover to a named node that never lets the
// lease go free (StepDownTo on the old holder, Adopt on the target), and the
// crash-restart takeover of a lease left by this node's dead predecessor
// (Config.Inherited). Everything here is optional: with no link, or a link
// that is down, the election runs on the storage alone.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Errors of StepDownTo and Adopt.
var (
	// ErrNoHandover means the lock backend cannot move its lease to a
	// named node.
	ErrNoHandover = errors.New("lease: this lock backend cannot hand the lease to a named node")
	// ErrNotEligible means this node may not take the lease now (backend
	// unhealthy, maintenance, stopping, or already active).
	ErrNotEligible = errors.New("lease: not eligible to take the lease")
)

// linkState is what the link features keep. Guarded by Elector.mu.
type linkState struct {
	inherited    bool      // the lease ID may hold a dead predecessor's lease, not yet resolved
	inheritAfter time.Time // when an ineligible node releases that lease
	polled       time.Time // the last storage call of a follower (Acquire or Read)
	nudged       bool      // a push asked for a storage call now
	adopt        *adoptReq // a handover waiting for the loop to adopt it
	handover     *handoverReq
	promisedTo   string            // failsafe: the active node this node promised to stand by for
	promisedTill time.Time         // ... until then (this node's clock)
	promiseRound uint64            // ... the round of that node's latest promise request
	withdrawn    map[string]uint64 // per active node, the latest round it withdrew
}

// Handover is the target's side of a step-down to a named node, reached
// over the peer link.
type Handover interface {
	// Prepare asks the target whether it takes the lease; it answers the
	// lease ID it proposes.
	Prepare(ctx context.Context) (proposedID string, err error)
	// Commit tells the target that the lease is now held under
	// proposedID; the target adopts it and answers its holder record.
	Commit(ctx context.Context, proposedID string) (Record, error)
}

type handoverReq struct {
	to      string
	changed bool  // the lease was moved to to
	err     error // why not
	done    chan struct{}
}

type adoptReq struct {
	from string
	rec  Record
	err  error
	done chan struct{}
}

// Nudge tells the Elector that the holder has just released the lease (a
// push over the link): a follower tries to acquire at once instead of at
// its next retry. It never blocks and changes nothing else.
func (e *Elector) Nudge() {
	e.mu.Lock()
	e.link.nudged = true
	e.mu.Unlock()
	e.kick()
}

// NoteHolder records a holder record pushed over the link by a node that
// has just acquired the lease, so that requests waiting for an active node
// move on at once. It is ignored while this node holds the lease, for our
// own name, and for a term older than the last one seen.
func (e *Elector) NoteHolder(rec Record) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.hold.held || rec.Holder == e.cfg.NodeName || rec.Holder == "" || rec.Term < e.st.Term {
		return
	}
	e.sawHolderLocked(rec, true)
}

// CanAdopt reports whether this node may take the lease over from its
// holder now (a target of StepDownTo): healthy, not in maintenance, not
// stopping or leaving, not active. The candidacy back-off does not apply:
// an operator asked for this node.
func (e *Elector) CanAdopt() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mayAdoptLocked()
}

func (e *Elector) mayAdoptLocked() error {
	if _, ok := e.lock.(Changer); !ok {
		return ErrNoHandover
	}
	switch {
	case e.stopped || e.link.adopt != nil:
		return fmt.Errorf("%w: stopping", ErrNotEligible)
	case e.leaving != "":
		return fmt.Errorf("%w: %s", ErrNotEligible, e.leaving)
	case !e.st.Healthy:
		return fmt.Errorf("%w: backend unhealthy: %s", ErrNotEligible, e.healthReason)
	case e.st.Maintenance:
		return fmt.Errorf("%w: maintenance", ErrNotEligible)
	case e.promisedLocked(e.now()):
		return fmt.Errorf("%w: promised %s to stand by (failsafe)", ErrNotEligible, e.link.promisedTo)
	case e.hold.held:
		return fmt.Errorf("%w: already active", ErrNotEligible)
	}
	return nil
}

// Adopt is the target's side of StepDownTo: the election loop takes over
// the lease held under from (Changer.Adopt: moved to our ID, renewed, new
// term) and becomes active. It returns the new holder record once the node
// is active, or why not.
func (e *Elector) Adopt(ctx context.Context, from string) (Record, error) {
	e.mu.Lock()
	if err := e.mayAdoptLocked(); err != nil {
		e.mu.Unlock()
		return Record{}, err
	}
	req := &adoptReq{from: from, done: make(chan struct{})}
	e.link.adopt = req
	if e.op.cancel != nil { // a follower call in flight: the loop adopts first
		e.op.aborted = true
		e.op.cancel()
	}
	e.mu.Unlock()
	e.kick()
	select {
	case <-req.done:
		return req.rec, req.err
	case <-ctx.Done():
		return Record{}, fmt.Errorf("adopt lease: %w", ctx.Err())
	case <-e.done:
		return Record{}, fmt.Errorf("%w: stopped", ErrNotEligible)
	}
}

// takeAdopt hands the loop a pending adoption, if any.
func (e *Elector) takeAdopt() *adoptReq {
	e.mu.Lock()
	defer e.mu.Unlock()
	req := e.link.adopt
	e.link.adopt = nil
	if req != nil {
		if err := e.mayAdoptLocked(); err != nil {
			req.err = err
			close(req.done)
			return nil
		}
	}
	return req
}

// StepDownTo hands the lease to the node behind h without letting it go
// free: the target proposes a lease ID (Prepare); this node fences itself
// off, retires its own lease ID and moves the lease to the proposed one
// (Changer.Change), then tells the target (Commit), which adopts it under
// its own ID with a new term. No third node can take the lease meanwhile:
// it is held throughout.
//
// If Prepare fails nothing has changed and this node stays active. If the
// change fails the lease is released instead (as StepDown). If the target
// does not confirm, the lease is released under the proposed ID, so that
// the normal election resumes at once; the error says so. Either way this
// node ends in its candidacy back-off. ctx bounds Prepare and Commit.
func (e *Elector) StepDownTo(ctx context.Context, reason string, h Handover) (Record, error) {
	ch, ok := e.lock.(Changer)
	if !ok {
		return Record{}, ErrNoHandover
	}
	e.mu.Lock()
	active := e.hold.held && !e.stopped && e.hold.pending == ""
	e.mu.Unlock()
	if !active {
		return Record{}, ErrNotActive
	}
	to, err := h.Prepare(ctx)
	if err != nil {
		return Record{}, fmt.Errorf("hand over: the target refused or did not answer, still active: %w", err)
	}
	e.mu.Lock()
	if !e.hold.held || e.stopped || e.hold.pending != "" {
		e.mu.Unlock()
		return Record{}, ErrNotActive
	}
	req := &handoverReq{to: to, done: make(chan struct{})}
	e.link.handover = req
	e.hold.waiters = append(e.hold.waiters, req.done)
	e.requestDemotionLocked(reason)
	e.mu.Unlock()
	e.kick()
	select {
	case <-req.done:
	case <-e.done:
		return Record{}, ErrNotActive
	}
	if !req.changed {
		return Record{}, fmt.Errorf("hand over: could not move the lease, released it instead: %w", req.err)
	}
	rec, err := h.Commit(ctx, to)
	if err == nil {
		e.NoteHolder(rec)
		return rec, nil
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.ReleaseTimeout)
	defer cancel()
	if rerr := ch.ReleaseID(rctx, to); rerr != nil {
		e.noteErr("release", rerr)
		return Record{}, fmt.Errorf("hand over: the target did not confirm (%w) and releasing the lease failed too (%v): it expires on its own", err, rerr)
	}
	e.log.Warn("handover not confirmed, lease released", zap.Error(err))
	return Record{}, fmt.Errorf("hand over: the target did not confirm, lease released so that the election resumes: %w", err)
}

// giveAway makes a call that gives the lease away (release, change). With
// an IDStore it first retires the lease ID durably and afterwards makes the
// lock use the next one, so that a successor process never reuses an ID
// whose release or change may still be on its way to the storage.
func (e *Elector) giveAway(op string, call func() error) error {
	k, keyed := e.lock.(Keyed)
	if e.cfg.IDs == nil || !keyed {
		return call()
	}
	next, err := e.cfg.IDs.Retire(k.LeaseID())
	if err != nil {
		return fmt.Errorf("%s not made, the lease id could not be retired (the lease expires on its own): %w", op, err)
	}
	err = call()
	k.SetLeaseID(next)
	return err
}

// resolveInherited releases a lease left by this node's dead predecessor
// when the node is still not eligible InheritGrace after Start. It runs at
// most once, on the loop, and only when the holder record names this node.
func (e *Elector) resolveInherited(ctx context.Context, now time.Time) {
	e.mu.Lock()
	due := e.link.inherited && !now.Before(e.link.inheritAfter)
	if due {
		e.link.inherited = false
	}
	e.mu.Unlock()
	if !due {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, e.cfg.ReleaseTimeout)
	defer cancel()
	rec, held, err := e.lock.Read(rctx)
	if err != nil {
		e.noteErr("read", err)
		return
	}
	if !held || rec.Holder != e.cfg.NodeName {
		return
	}
	err = e.giveAway("release", func() error { return e.lock.Release(rctx) })
	if err != nil {
		e.noteErr("release", err)
		return
	}
	e.log.Info("released the lease left by this node's previous process: not eligible",
		zap.Uint64("term", rec.Term))
	e.emit(Event{Kind: EventReleased, Term: rec.Term})
}

// ErrPromiseRefused is returned by Promise on a node that is active itself.
var ErrPromiseRefused = errors.New("lease: active here, cannot promise to stand by")

// ErrPromiseStale is returned by Promise for a round the asking node has
// already withdrawn (the request arrived after the withdraw).
var ErrPromiseStale = errors.New("lease: promise round already withdrawn")

// Promise is a peer's side of failsafe: this node promises the active node
// from not to acquire the lease and not to serve locally for window from
// now (this node's clock). It refuses while it holds the lease itself. A
// promise binds even if this node's own storage path works (a partition of
// the active alone): until it lapses (or is withdrawn) the node stays out
// of candidacy, refuses handovers, and never turns its fence on (an
// acquisition that was already on its way is given back unused).
//
// round numbers the active node's requests, increasing (0: unnumbered).
// A Withdraw voids only promises of its round and earlier, so a withdraw
// that arrives after a newer promise (messages of one node can overtake
// each other) does not void it; a promise of a round already withdrawn is
// refused with ErrPromiseStale.
func (e *Elector) Promise(from string, round uint64, window time.Duration) (until time.Time, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.hold.held {
		return time.Time{}, ErrPromiseRefused
	}
	if round != 0 && round <= e.link.withdrawn[from] {
		return time.Time{}, ErrPromiseStale
	}
	now := e.now()
	until = now.Add(window)
	if until.After(e.link.promisedTill) {
		e.link.promisedTill = until
	}
	if e.link.promisedTo != from {
		e.log.Info("promised to stand by: the active node is in failsafe", zap.String("for", from), zap.Duration("window", window))
		e.link.promiseRound = 0
	}
	e.link.promisedTo = from
	e.link.promiseRound = max(e.link.promiseRound, round)
	e.st.PromisedTo, e.st.PromisedUntil = from, e.link.promisedTill
	if e.op.cancel != nil { // an Acquire in flight: re-evaluate at once
		e.op.aborted = true
		e.op.cancel()
	}
	e.publishLocked()
	return e.link.promisedTill, nil
}

// Withdraw voids the promises given to from up to round (its storage
// answers again, or it stopped being active; 0 voids them all, for a node
// that does not number its rounds). A promise of a later round stands.
func (e *Elector) Withdraw(from string, round uint64) {
	e.mu.Lock()
	if round != 0 {
		if e.link.withdrawn == nil {
			e.link.withdrawn = make(map[string]uint64)
		}
		e.link.withdrawn[from] = max(e.link.withdrawn[from], round)
	}
	if e.link.promisedTo != from || !e.now().Before(e.link.promisedTill) ||
		(round != 0 && e.link.promiseRound > round) {
		e.mu.Unlock()
		return
	}
	e.link.promisedTo, e.link.promisedTill, e.link.promiseRound = "", time.Time{}, 0
	e.st.PromisedTo, e.st.PromisedUntil = "", time.Time{}
	e.publishLocked()
	e.mu.Unlock()
	e.log.Info("promise withdrawn", zap.String("by", from))
	e.kick()
}

// promisedLocked reports whether a promise binds this node now.
func (e *Elector) promisedLocked(now time.Time) bool {
	return e.link.promisedTo != "" && now.Before(e.link.promisedTill)
}
