package lease

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// The pause guard. The fence keeps its deadline on two clocks: Config.Now
// (in production time.Now, whose values carry the monotonic reading that
// comparisons use) and the wall clock (Config.Wall, by default the wall
// reading of the same time.Now value). Fence requires both to be before
// their deadline. A VM paused by its hypervisor may resume with a
// monotonic clock that did not advance during the pause while the wall
// clock is synchronized forward: the wall deadline then has passed, and
// the node serves nothing on a lease another node may hold by now.
//
// A cheap detector (watchClocks) also compares how far the two clocks
// moved between its ticks. When they disagree by more than
// Config.ClockJump (a pause the monotonic clock hid, or a step of the wall
// clock), it turns the fence off at once and the node serves again only
// after a renew sent after the detection succeeded (or, in failsafe, a
// promise round asked after it). An NTP step of the wall clock, either
// way, costs at most that re-verification, never a request served without
// a valid lease.

// stamp is one reading of both clocks.
type stamp struct {
	t    time.Time // Config.Now: deadlines and timers
	wall int64     // the wall clock, Unix ns
}

func (e *Elector) stamp() stamp {
	t := e.now()
	if e.cfg.Wall != nil {
		return stamp{t, e.cfg.Wall()}
	}
	return stamp{t, t.UnixNano()}
}

func (s stamp) add(d time.Duration) stamp { return stamp{s.t.Add(d), s.wall + int64(d)} }

// before reports whether s is before o on both clocks.
func (s stamp) before(o stamp) bool { return s.t.Before(o.t) && s.wall < o.wall }

// notBefore reports whether s is at or after o on both clocks.
func (s stamp) notBefore(o stamp) bool { return !s.t.Before(o.t) && s.wall >= o.wall }

// DefaultClockJump is Config.ClockJump's default.
const DefaultClockJump = time.Second

// clockState is the pause guard's. Guarded by Elector.mu.
type clockState struct {
	jumped   stamp // the last detection; zero: none
	reverify bool  // active, fence off until a renew sent after jumped succeeds
}

// trustedLocked reports whether a call sent at sent may (re)publish the
// fence: it was sent after the last clock jump.
func (e *Elector) trustedLocked(sent stamp) bool {
	if e.clock.jumped.t.IsZero() || sent.notBefore(e.clock.jumped) {
		e.clock.reverify = false
		return true
	}
	e.clock.reverify = true
	return false
}

// clockTick is how often watchClocks compares the clocks.
func (e *Elector) clockTick() time.Duration {
	return min(max(e.cfg.ClockJump/4, 50*time.Millisecond), time.Second)
}

// watchClocks runs the detector until ctx ends.
func (e *Elector) watchClocks(ctx context.Context) {
	if e.cfg.ClockJump < 0 {
		return
	}
	t := time.NewTicker(e.clockTick())
	defer t.Stop()
	prev := e.stamp()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := e.stamp()
		mono, wall := now.t.Sub(prev.t), time.Duration(now.wall-prev.wall)
		if d := mono - wall; d > e.cfg.ClockJump || -d > e.cfg.ClockJump {
			e.clockJumped(now, mono, wall)
		}
		prev = now
	}
}

// clockJumped turns the fence off until the lease is confirmed again.
func (e *Elector) clockJumped(at stamp, mono, wall time.Duration) {
	e.mu.Lock()
	e.clock.jumped = at
	active := e.hold.held && e.fence.Load() != nil
	if active {
		e.fence.Store(nil)
		e.clock.reverify = true
		e.st.Reason = "clocks disagree (a pause?): serving again after the lease is renewed"
		e.publishLocked()
	}
	e.mu.Unlock()
	e.log.Warn("the wall clock and the monotonic clock disagree: the VM may have been paused, or the wall clock stepped",
		zap.Duration("monotonic_elapsed", mono), zap.Duration("wall_elapsed", wall), zap.Bool("fence_off", active))
	e.emit(Event{Kind: EventClockJump, Latency: mono - wall})
	if active {
		e.kick() // the lead loop renews at once
	}
}

// reverifyNow reports whether the lead loop should renew at once.
func (e *Elector) reverifyNow() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.clock.reverify
}
