package lease

// Leading: from a successful acquisition through renewals under the
// deadline to the demotion (fence off, release, back-off, new role).

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

type renewResult struct {
	sent stamp
	done time.Time
	err  error
	// promised: after the failed renew every peer promised to stand by,
	// asked at promiseSent (failsafe).
	promised    bool
	promiseSent stamp
}

// lead holds the lease acquired at sent until it is lost, given up or the
// Elector stops.
func (e *Elector) lead(ctx context.Context, acq acquisition) {
	sent := acq.sent
	deadline := sent.add(e.cfg.RenewDeadline)
	if !e.becomeActive(acq, deadline) {
		// Eligibility changed (or Stop) while the acquire was in flight:
		// the node never served; give the lease back at once.
		e.demote(ctx, "", true, nil, nil)
		return
	}
	var (
		deadlineT = time.NewTimer(deadline.t.Sub(e.now()))
		renewT    = time.NewTimer(sent.t.Add(e.cfg.RenewInterval).Sub(e.now()))
		inflight  chan renewResult
		cancelOp  context.CancelFunc = func() {}
		reason    string
		voluntary bool
	)
	defer deadlineT.Stop()
	defer renewT.Stop()
	if e.reverifyNow() {
		renewT.Reset(0) // acquired across a clock jump: confirm at once
	}
loop:
	for {
		select {
		case <-ctx.Done():
			reason, voluntary = "stopped", true
			break loop
		case <-e.wake:
			e.mu.Lock()
			reason = e.hold.pending
			reverify := e.clock.reverify
			e.mu.Unlock()
			if reason != "" {
				voluntary = true
				break loop
			}
			if reverify && inflight == nil {
				renewT.Reset(0) // a clock jump: confirm the lease now
			}
		case <-deadlineT.C:
			reason = "renew deadline passed"
			break loop
		case <-renewT.C:
			// Each attempt is bounded by the interval and by the deadline:
			// a renew never outlives the time it could still be useful.
			now := e.stamp()
			left := deadline.t.Sub(now.t)
			if left <= 0 {
				continue // the deadline timer fires now
			}
			var opCtx context.Context
			opCtx, cancelOp = context.WithTimeout(ctx, min(e.cfg.RenewInterval, left))
			inflight = make(chan renewResult, 1)
			e.ops.Add(1)
			go func(ch chan<- renewResult, deadline stamp) {
				defer e.ops.Done()
				err := e.lock.Renew(opCtx, e.cfg.Duration)
				r := renewResult{sent: now, done: e.now(), err: err}
				if err != nil && !errors.Is(err, ErrLost) && e.cfg.Failsafe != nil {
					r.promised, r.promiseSent = e.askPromises(ctx, deadline)
				}
				ch <- r
			}(inflight, deadline)
		case r := <-inflight:
			inflight = nil
			cancelOp()
			switch {
			case r.err == nil:
				deadline = r.sent.add(e.cfg.RenewDeadline)
				e.renewed(r, deadline)
				deadlineT.Reset(deadline.t.Sub(e.now()))
				renewT.Reset(r.sent.t.Add(e.cfg.RenewInterval).Sub(e.now()))
				if e.reverifyNow() {
					renewT.Reset(0) // sent before a clock jump: once more
				}
				e.leaveFailsafe("storage answers again")
			case errors.Is(r.err, ErrLost):
				e.emit(Event{Kind: EventRenewFailed, Latency: r.done.Sub(r.sent.t), Err: r.err})
				reason = "lease lost"
				break loop
			default:
				e.emit(Event{Kind: EventRenewFailed, Latency: r.done.Sub(r.sent.t), Err: r.err})
				e.noteErr("renew", r.err)
				if d := r.promiseSent.add(e.cfg.RenewDeadline); r.promised && d.t.After(deadline.t) && e.failsafe(r.err, r.promiseSent, d) {
					deadline = d
					deadlineT.Reset(deadline.t.Sub(e.now()))
				}
				next := r.sent.t.Add(e.cfg.RenewInterval)
				if retry := r.done.Add(e.cfg.RetryInterval); retry.Before(next) {
					next = retry
				}
				renewT.Reset(next.Sub(e.now()))
			}
		}
	}
	e.demote(ctx, reason, voluntary, inflight, cancelOp)
}

// acquisition is how the loop came to hold the lease: rec is the new
// holder record, sent the send time of the call that took it (the deadline
// counts from there), done when it answered.
type acquisition struct {
	rec    Record
	sent   stamp
	done   time.Time
	reason string    // for the role change
	adopt  *adoptReq // a handover to this node: answered once active (or not)
}

// becomeActive publishes the fence unless the node became ineligible while
// acquiring (for a handover: ineligible apart from the back-off).
func (e *Elector) becomeActive(acq acquisition, deadline stamp) (ok bool) {
	rec, sent, done := acq.rec, acq.sent, acq.done
	e.mu.Lock()
	defer e.mu.Unlock()
	e.noteOKLocked()
	e.st.Term = rec.Term
	if acq.adopt != nil {
		defer func() {
			acq.adopt.rec = rec
			if !ok {
				acq.adopt.err = fmt.Errorf("%w: became ineligible while adopting", ErrNotEligible)
			}
			close(acq.adopt.done)
		}()
		if e.stopped || e.leaving != "" || !e.st.Healthy || e.st.Maintenance || e.promisedLocked(done) {
			return false
		}
	} else if _, _, passive := e.passiveRoleLocked(done); passive {
		return false
	}
	e.hold.held = true
	e.hold.pending = ""
	if e.trustedLocked(sent) {
		e.fence.Store(&fenceValue{term: rec.Term, until: deadline})
	}
	e.st.Holder, e.st.HolderKnown = rec, true
	e.st.ValidUntil = deadline.t
	e.st.LastRenew, e.st.RenewLatency = done, done.Sub(sent.t)
	e.st.BackoffUntil = time.Time{} // a handover may end this node's back-off
	e.setRoleLocked(RoleActive, acq.reason)
	e.publishLocked()
	e.emit(Event{Kind: EventAcquired, Term: rec.Term, Latency: done.Sub(sent.t), Holder: rec, Reason: acq.reason})
	return true
}

// renewed moves the fence deadline after a successful renew, unless a
// demotion is already under way.
func (e *Elector) renewed(r renewResult, deadline stamp) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.noteOKLocked()
	if e.stopped || e.hold.pending != "" {
		return
	}
	was := e.clock.reverify
	if e.trustedLocked(r.sent) {
		if was {
			e.log.Info("lease confirmed after the clocks disagreed: serving again")
			e.st.Reason = "lease confirmed after a clock jump"
		}
		e.fence.Store(&fenceValue{term: e.st.Term, until: deadline})
	}
	e.st.ValidUntil = deadline.t
	e.st.LastRenew, e.st.RenewLatency = r.done, r.done.Sub(r.sent.t)
	e.publishLocked()
	e.emit(Event{Kind: EventRenewed, Latency: r.done.Sub(r.sent.t)})
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
	e.hold.held = false
	waiters := e.hold.waiters
	e.hold.waiters = nil
	handover := e.link.handover
	e.link.handover = nil
	term := e.st.Term
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
		e.giveUp(rctx, handover, term)
		cancel()
	}

	e.mu.Lock()
	e.hold.pending = ""
	if reason != "" {
		now := e.now()
		e.seek.handover = now
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
	e.leaveFailsafe("no longer active")
	for _, ch := range waiters {
		close(ch)
	}
}

// leadership is the loop's hold on the lease, from a successful acquisition
// until demote has finished. All fields are guarded by Elector.mu.
type leadership struct {
	held    bool            // the loop holds the lease (the fence may already be off)
	pending string          // a voluntary demotion requested while held; the first reason wins
	waiters []chan struct{} // StepDown and Leave calls waiting for the demotion to finish
}

// giveUp gives the lease away on a voluntary demotion: to the target of a
// handover when one is pending (Changer.Change), else, or when that fails,
// by releasing it. Either call is made only after the lease ID is retired
// (giveAway).
func (e *Elector) giveUp(ctx context.Context, h *handoverReq, term uint64) {
	if h != nil {
		ch := e.lock.(Changer)
		old := ch.LeaseID()
		retired := false
		err := e.giveAway("change", func() error { retired = true; return ch.Change(ctx, h.to) })
		if err == nil {
			h.changed = true
			e.emit(Event{Kind: EventHandedOver, Term: term})
			return
		}
		h.err = err
		e.noteErr("change", err)
		if errors.Is(err, ErrLost) || !retired {
			return // not ours any more, or the id could not be retired: nothing to release
		}
		// The change may or may not have reached the storage: release under
		// the old id (already retired) and under the proposed one (the
		// target adopts it only on Commit, which will not come).
		rerr := errors.Join(ch.ReleaseID(ctx, old), ch.ReleaseID(ctx, h.to))
		if rerr != nil {
			e.noteErr("release", rerr)
			return
		}
		e.emit(Event{Kind: EventReleased, Term: term})
		return
	}
	if err := e.giveAway("release", func() error { return e.lock.Release(ctx) }); err != nil {
		e.noteErr("release", err)
		return
	}
	e.emit(Event{Kind: EventReleased, Term: term})
}

// askPromises runs one failsafe round after a failed renew: every peer
// must promise to stand by for Duration. It is bounded by RenewInterval and
// by the deadline (a promise that arrives after it is useless: the node has
// demoted by then).
func (e *Elector) askPromises(ctx context.Context, deadline stamp) (bool, stamp) {
	sent := e.stamp()
	left := deadline.t.Sub(sent.t)
	if left <= 0 {
		return false, sent
	}
	pctx, cancel := context.WithTimeout(ctx, min(e.cfg.RenewInterval, left))
	defer cancel()
	ok := e.cfg.Failsafe(pctx, e.cfg.Duration)
	return ok && pctx.Err() == nil, sent
}

// failsafe extends the fence to until on the peers' promises, unless a
// demotion is under way; the first extension of an outage is logged once.
func (e *Elector) failsafe(cause error, sent, until stamp) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped || e.hold.pending != "" || !e.hold.held || !e.trustedLocked(sent) {
		return false
	}
	e.fence.Store(&fenceValue{term: e.st.Term, until: until})
	e.st.ValidUntil = until.t
	if !e.st.Failsafe {
		e.st.Failsafe, e.st.FailsafeSince = true, e.now()
		e.st.Reason = "failsafe: storage unreachable, every peer promised to stand by"
		e.log.Warn("failsafe: serving on the peers' promises while the storage does not answer",
			zap.Error(cause), zap.Uint64("term", e.st.Term))
		e.emit(Event{Kind: EventFailsafe, Term: e.st.Term, Err: cause})
	}
	e.publishLocked()
	return true
}

// leaveFailsafe ends failsafe (logged once) and withdraws the promises.
func (e *Elector) leaveFailsafe(why string) {
	e.mu.Lock()
	was, since := e.st.Failsafe, e.st.FailsafeSince
	if was {
		e.st.Failsafe, e.st.FailsafeSince = false, time.Time{}
		if e.hold.held {
			e.st.Reason = "lease renewed after failsafe"
		}
		e.publishLocked()
		took := e.now().Sub(since)
		e.log.Info("failsafe over", zap.String("why", why), zap.Duration("after", took), zap.Uint64("term", e.st.Term))
		e.emit(Event{Kind: EventFailsafe, Term: e.st.Term, Latency: took})
	}
	e.mu.Unlock()
	if was && e.cfg.Withdraw != nil {
		e.cfg.Withdraw()
	}
}
