package lease

// The election loop while the node does not hold the lease: candidacy,
// acquire attempts, and the pauses between them.

import (
	"context"
	"errors"
	"time"
)

// run is the election loop: one iteration per acquire attempt or holder
// read, with lead taking over while the node holds the lease.
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
		if req := e.takeAdopt(); req != nil {
			e.adoptLease(ctx, req)
			continue
		}
		e.mu.Lock()
		now := e.now()
		if role, reason, passive := e.passiveRoleLocked(now); passive {
			e.setRoleLocked(role, reason)
			wait := e.cfg.RetryInterval
			for _, end := range []time.Time{e.st.BackoffUntil, e.link.promisedTill} {
				if left := end.Sub(now); left > 0 && left < wait {
					wait = left
				}
			}
			e.mu.Unlock()
			e.resolveInherited(ctx, now)
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
		holder, vouch := e.vouchLocked(now)
		e.mu.Unlock()
		if vouch && e.holderAlive(ctx, holder) {
			e.sleep(ctx, now.Add(e.cfg.RetryInterval))
			continue
		}

		sent := e.stamp()
		var rec Record
		aborted, err := e.call(ctx, true, func(ctx context.Context) error {
			var err error
			rec, err = e.lock.Acquire(ctx, e.self, e.cfg.Duration)
			return err
		})
		inherited := false
		if err == nil || errors.Is(err, ErrHeld) {
			e.mu.Lock()
			inherited = e.link.inherited
			e.link.inherited = false // resolved: taken over, or somebody else holds the lease
			e.mu.Unlock()
		}
		switch {
		case err == nil:
			reason := "lease acquired"
			switch {
			case rec.Resumed && inherited:
				reason = "lease taken over from this node's previous process"
			case rec.Resumed:
				reason = "lease acquired (still held under this node's lease id)"
			}
			e.lead(ctx, acquisition{rec: rec, sent: sent, done: e.now(), reason: reason})
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
		e.sleep(ctx, sent.t.Add(e.cfg.RetryInterval))
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
	e.op.cancel, e.op.aborted = cancel, false
	e.mu.Unlock()

	err = fn(opCtx)

	e.mu.Lock()
	aborted = e.op.aborted
	e.op.cancel, e.op.aborted = nil, false
	e.mu.Unlock()
	return aborted && err != nil, err
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

// followerCall is the Acquire or Read the loop has in flight while not
// leading, so that an eligibility change can cancel it. Guarded by
// Elector.mu.
type followerCall struct {
	cancel  context.CancelFunc // nil when no call is in flight
	aborted bool               // cancel was called by an eligibility change
}

// vouchLocked reports whether this round may ask the holder over the link
// instead of the storage: a standby that knows the holder, had no storage
// error, was not nudged, and made a storage call within the last Duration.
func (e *Elector) vouchLocked(now time.Time) (Record, bool) {
	nudged := e.link.nudged
	e.link.nudged = false
	ok := e.cfg.HolderAlive != nil && !nudged && e.st.LastError == "" &&
		e.st.HolderKnown && e.st.Holder.Holder != e.cfg.NodeName &&
		!e.link.polled.IsZero() && now.Before(e.link.polled.Add(e.cfg.Duration))
	return e.st.Holder, ok
}

// holderAlive asks Config.HolderAlive, bounded by RetryInterval.
func (e *Elector) holderAlive(ctx context.Context, rec Record) bool {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.RetryInterval)
	defer cancel()
	return e.cfg.HolderAlive(ctx, rec)
}

// adoptLease carries out a handover on the target: the lease held under
// req.from becomes ours (Changer.Adopt) and the node leads.
func (e *Elector) adoptLease(ctx context.Context, req *adoptReq) {
	ch := e.lock.(Changer) // checked by mayAdoptLocked
	sent := e.stamp()
	opCtx, cancel := context.WithTimeout(ctx, e.cfg.RenewInterval)
	rec, err := ch.Adopt(opCtx, req.from, e.self, e.cfg.Duration)
	cancel()
	if err != nil {
		if !errors.Is(err, ErrLost) {
			e.noteErr("adopt", err)
		}
		req.err = err
		close(req.done)
		return
	}
	e.mu.Lock()
	e.link.inherited = false
	from := e.st.Holder.Holder
	e.mu.Unlock()
	reason := "lease handed over"
	if from != "" {
		reason += " by " + from
	}
	e.lead(ctx, acquisition{rec: rec, sent: sent, done: e.now(), reason: reason, adopt: req})
}
