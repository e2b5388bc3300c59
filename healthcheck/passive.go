package healthcheck

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
)

// The passive signals are evaluated on a small ticker, not on the request path: RequestDone
// only increments cumulative counters (no clock read, no lock, no allocation), and each tick
// samples them into a ring of (time, requests, errors). The window's counts are the difference
// between the newest sample and the newest one at least Window old, so the window slides in
// steps of one tick. Overload is noticed on the request path by one compare against
// MaxInFlight; the highest count above the limit is kept in an atomic for the next tick.

const (
	minPassiveTick = 10 * time.Millisecond
	maxPassiveTick = 250 * time.Millisecond
)

// trip is a tripped passive signal: the node is unhealthy until until.
type trip struct {
	until  time.Time
	reason string
}

type sample struct {
	at       time.Time
	requests int64
	errors   int64
}

type passiveState struct {
	spec        PassiveSpec
	maxInFlight int64 // spec.MaxInFlight, read on the request path
	minRequests int64
	tick        time.Duration

	// ring is touched only by passiveEval (the passive goroutine, or a test).
	ring  []sample
	first int // index of the oldest sample
	n     int

	mu   sync.Mutex
	snap PassiveStatus // last evaluation, for Status
}

func (p *passiveState) init(s PassiveSpec) error {
	switch {
	case s.ErrorRate < 0 || s.ErrorRate > 1:
		return fmt.Errorf("healthcheck: passive error rate %v must be within [0, 1]", s.ErrorRate)
	case s.Window < 0:
		return fmt.Errorf("healthcheck: passive window %s is negative", s.Window)
	case s.ErrorRate > 0 && s.Window == 0:
		return fmt.Errorf("healthcheck: passive error rate %v needs a window > 0", s.ErrorRate)
	case s.MinRequests < 0:
		return fmt.Errorf("healthcheck: passive min requests %d is negative", s.MinRequests)
	case s.MaxInFlight < 0:
		return fmt.Errorf("healthcheck: passive max in flight %d is negative", s.MaxInFlight)
	case s.Cooldown < 0:
		return fmt.Errorf("healthcheck: passive cooldown %s is negative", s.Cooldown)
	case (s.ErrorRate > 0 || s.MaxInFlight > 0) && s.Cooldown == 0:
		return fmt.Errorf("healthcheck: passive signals need a cooldown > 0")
	}
	p.spec = s
	p.maxInFlight = int64(s.MaxInFlight)
	p.minRequests = int64(max(s.MinRequests, 1))
	p.tick = maxPassiveTick
	if s.ErrorRate > 0 {
		p.tick = min(max(s.Window/10, minPassiveTick), maxPassiveTick)
		p.ring = make([]sample, int(s.Window/p.tick)+2)
	}
	return nil
}

func (p *passiveState) on() bool { return p.spec.ErrorRate > 0 || p.spec.MaxInFlight > 0 }

func (p *passiveState) push(s sample) {
	if p.n == len(p.ring) {
		p.first = (p.first + 1) % len(p.ring)
		p.n--
	}
	p.ring[(p.first+p.n)%len(p.ring)] = s
	p.n++
}

// baseline is the newest sample taken at or before now-Window, or the oldest one while the
// ring does not reach that far back yet.
func (p *passiveState) baseline(now time.Time) sample {
	edge := now.Add(-p.spec.Window)
	base := p.ring[p.first]
	for i := 1; i < p.n; i++ {
		s := p.ring[(p.first+i)%len(p.ring)]
		if s.at.After(edge) {
			break
		}
		base = s
	}
	return base
}

func (p *passiveState) reseed(s sample) {
	p.first, p.n = 0, 0
	p.push(s)
}

// runPassive evaluates the passive signals on every tick until ctx is done.
func (m *Monitor) runPassive(ctx context.Context) {
	defer m.wg.Done()
	t := time.NewTicker(m.passive.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if m.passiveEval(m.now()) {
				m.evaluate()
			}
		}
	}
}

// passiveEval samples the counters at now, ends an expired trip and trips a signal that
// crossed its threshold. It reports whether the trip state changed. After a trip ends, the
// window starts afresh: errors from before and during the cooldown are not held against the
// node again.
func (m *Monitor) passiveEval(now time.Time) (changed bool) {
	p := &m.passive
	cur := sample{at: now, requests: m.requests.v.Load(), errors: m.errs.v.Load()}
	inflight := m.inflight.v.Load()
	over := max(m.overPeak.v.Swap(0), inflight)

	var reqs, errs int64
	if p.ring != nil {
		p.push(cur)
		base := p.baseline(now)
		reqs, errs = cur.requests-base.requests, cur.errors-base.errors
	}

	tr := m.trip.Load()
	if tr != nil && !now.Before(tr.until) {
		m.trip.Store(nil)
		tr = nil
		changed = true
		m.log.Debug("passive signal cleared")
		if p.ring != nil {
			p.reseed(cur)
			reqs, errs = 0, 0
		}
		over = inflight // a peak from the cooldown is history
	}
	if tr == nil {
		reason := ""
		switch {
		case p.maxInFlight > 0 && over > p.maxInFlight:
			reason = fmt.Sprintf("passive: %d requests in flight > %d", over, p.maxInFlight)
		case p.spec.ErrorRate > 0 && reqs >= p.minRequests && float64(errs)/float64(reqs) >= p.spec.ErrorRate:
			reason = fmt.Sprintf("passive: error rate %.2f >= %.2f over %s (%d/%d requests)",
				float64(errs)/float64(reqs), p.spec.ErrorRate, p.spec.Window, errs, reqs)
		}
		if reason != "" {
			tr = &trip{until: now.Add(p.spec.Cooldown), reason: reason}
			m.trip.Store(tr)
			changed = true
			// The overall "backend unhealthy" line, if health changes, carries the reason.
			m.log.Debug("passive signal tripped", zap.String("reason", reason), zap.Time("until", tr.until))
		}
	}

	snap := PassiveStatus{Requests: reqs, Errors: errs}
	if reqs > 0 {
		snap.ErrorRate = float64(errs) / float64(reqs)
	}
	if tr != nil {
		until := tr.until
		snap.TrippedUntil = &until
		snap.Reason = tr.reason
	}
	p.mu.Lock()
	p.snap = snap
	p.mu.Unlock()
	return changed
}
