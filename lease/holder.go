package lease

// Holder lookup: what this node knows about the current holder, and Seek's
// faster reads while requests wait for an active node.

import (
	"context"
	"time"
)

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
	open := now.Before(e.seek.until)
	if until := now.Add(max(window, e.cfg.RetryInterval)); until.After(e.seek.until) {
		e.seek.until = until
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
	return now.Before(e.seek.until) && now.Before(e.seek.handover.Add(e.cfg.Duration)) &&
		!(e.st.HolderKnown && h.Holder != e.cfg.NodeName && h.AdvertiseURL != "")
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
	e.link.polled = e.now()
	e.sawHolderLocked(rec, held)
}

// sawHolderLocked records a holder record, from the storage or pushed over
// the link.
func (e *Elector) sawHolderLocked(rec Record, held bool) {
	// Without a holder the record is not kept (State.Holder stays zero), so
	// only the term can change then.
	changed := held != e.st.HolderKnown || rec.Term != e.st.Term || held && !sameHolder(rec, e.st.Holder)
	e.st.Term = rec.Term
	if held {
		e.st.Holder, e.st.HolderKnown = rec, true
	} else {
		e.st.Holder, e.st.HolderKnown = Record{}, false
	}
	if changed {
		// Published after the change: Config.OnState sees the new holder.
		e.seek.handover = e.now()
		e.publishLocked()
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

// seekWindow bounds Seek's faster reads of the holder record. Guarded by
// Elector.mu.
type seekWindow struct {
	until    time.Time // Seek's window: read the holder every SeekInterval
	handover time.Time // the last demotion or change of holder seen: Seek works for Duration after it
}
