package healthcheck

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// The passive signals are evaluated on a small ticker, not on the request path: RequestDone
// only increments cumulative counters (no clock read, no lock, no allocation), and each tick
// samples them into a ring of (time, requests, errors). The window's counts are the difference
// between the newest sample and the newest one at least Window old, so the window slides in
// steps of one sample. Overload is noticed on the request path by one compare against
// MaxInFlight; the highest count above the limit is kept in an atomic for the next tick.
//
// Every error-rate signal (the global one and one per PathSpec) has its own ring, sampled
// every max(Window/10, 10ms) capped at 250ms (or Window/1000 for windows over 250s, so that
// no ring holds more than about a thousand samples). The ticker runs at the shortest of
// these steps; a signal with a longer step samples on every n-th tick.
//
// One passive trip at a time: the first signal over its threshold (overload, the global error
// rate, then the path rules in order) holds the node unhealthy for its cooldown, and the
// others are not evaluated meanwhile (the node is out anyway). When the trip ends, every
// window starts afresh.

const (
	minPassiveTick = 10 * time.Millisecond
	maxPassiveTick = 250 * time.Millisecond
	// maxPassiveSamples bounds a ring: longer windows sample more coarsely.
	maxPassiveSamples = 1000
	// MaxPathRules is how many PathSpecs a Monitor takes.
	MaxPathRules = 32
)

// PathSpec is an error-rate signal over the requests whose URL path starts with Prefix
// (byte-wise, case-sensitive), reported through RequestDonePath. Every rule whose prefix
// matches counts a request, so nested prefixes ("/api/" and "/api/checkout/") both see a
// request to /api/checkout/pay; each rule's window is exactly the requests under its prefix.
// Over the last Window, if at least MinRequests such requests completed and
// errors/requests >= ErrorRate, the node is unhealthy for Cooldown, as with the global rate.
type PathSpec struct {
	Prefix      string // starts with "/"; unique
	ErrorRate   float64
	Window      time.Duration
	MinRequests int // 0 means 1
	Cooldown    time.Duration
}

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

// counter is a pair of request-path counters on a cache line of its own.
type counter struct {
	requests atomic.Int64
	errs     atomic.Int64
	_        [48]byte
}

// rateSignal is one error-rate signal: its thresholds, the counters it samples and its ring.
// Only passiveEval (the passive goroutine, or a test) touches the ring.
type rateSignal struct {
	prefix      string // "" for the global signal
	rate        float64
	window      time.Duration
	minRequests int64
	cooldown    time.Duration
	requests    *atomic.Int64
	errs        *atomic.Int64

	every int // sample on every n-th tick
	ticks int // ticks since the last sample
	ring  []sample
	first int // index of the oldest sample
	n     int

	cur            sample // the counters at the last evaluation
	reqs, errCount int64  // the window's counts at the last evaluation
}

// step is how often a signal over window samples its counters.
func step(window time.Duration) time.Duration {
	return max(min(max(window/10, minPassiveTick), maxPassiveTick), window/maxPassiveSamples)
}

type passiveState struct {
	spec        PassiveSpec
	maxInFlight int64 // spec.MaxInFlight, read on the request path
	tick        time.Duration

	global *rateSignal   // nil unless spec.ErrorRate > 0; also in rates
	paths  []*rateSignal // one per spec.Paths, in order; also in rates
	rates  []*rateSignal // the global signal first, then the paths

	mu   sync.Mutex
	snap PassiveStatus // last evaluation, for Status
}

// init validates s and builds the signals; requests and errs are the global counters, counts
// the path rules' counters, one per s.Paths.
func (p *passiveState) init(s PassiveSpec, requests, errs *atomic.Int64, counts []counter) error {
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
	case len(s.Paths) > MaxPathRules:
		return fmt.Errorf("healthcheck: %d passive path rules, at most %d", len(s.Paths), MaxPathRules)
	}
	seen := make(map[string]bool, len(s.Paths))
	for _, ps := range s.Paths {
		if err := validatePath(ps); err != nil {
			return err
		}
		if seen[ps.Prefix] {
			return fmt.Errorf("healthcheck: passive path %q: duplicate prefix", ps.Prefix)
		}
		seen[ps.Prefix] = true
	}
	p.spec = s
	p.maxInFlight = int64(s.MaxInFlight)
	if s.ErrorRate > 0 {
		p.global = &rateSignal{rate: s.ErrorRate, window: s.Window, minRequests: int64(max(s.MinRequests, 1)),
			cooldown: s.Cooldown, requests: requests, errs: errs}
		p.rates = append(p.rates, p.global)
	}
	for i, ps := range s.Paths {
		r := &rateSignal{prefix: ps.Prefix, rate: ps.ErrorRate, window: ps.Window,
			minRequests: int64(max(ps.MinRequests, 1)), cooldown: ps.Cooldown,
			requests: &counts[i].requests, errs: &counts[i].errs}
		p.paths = append(p.paths, r)
		p.rates = append(p.rates, r)
	}
	p.tick = maxPassiveTick
	for _, r := range p.rates {
		p.tick = min(p.tick, step(r.window))
	}
	for _, r := range p.rates {
		r.every = max(int(step(r.window)/p.tick), 1)
		r.ring = make([]sample, int(r.window/(time.Duration(r.every)*p.tick))+2)
	}
	return nil
}

func validatePath(ps PathSpec) error {
	switch {
	case !strings.HasPrefix(ps.Prefix, "/"):
		return fmt.Errorf("healthcheck: passive path %q: the prefix must start with \"/\"", ps.Prefix)
	case !(ps.ErrorRate > 0 && ps.ErrorRate <= 1):
		return fmt.Errorf("healthcheck: passive path %q: error rate %v must be within (0, 1]", ps.Prefix, ps.ErrorRate)
	case ps.Window <= 0:
		return fmt.Errorf("healthcheck: passive path %q: window %s must be > 0", ps.Prefix, ps.Window)
	case ps.MinRequests < 0:
		return fmt.Errorf("healthcheck: passive path %q: min requests %d is negative", ps.Prefix, ps.MinRequests)
	case ps.Cooldown <= 0:
		return fmt.Errorf("healthcheck: passive path %q: cooldown %s must be > 0", ps.Prefix, ps.Cooldown)
	}
	return nil
}

func (p *passiveState) on() bool { return len(p.rates) > 0 || p.spec.MaxInFlight > 0 }

func (r *rateSignal) push(s sample) {
	if r.n == len(r.ring) {
		r.first = (r.first + 1) % len(r.ring)
		r.n--
	}
	r.ring[(r.first+r.n)%len(r.ring)] = s
	r.n++
	r.ticks = 0
}

// baseline is the newest sample taken at or before now-window, or the oldest one while the
// ring does not reach that far back yet.
func (r *rateSignal) baseline(now time.Time) sample {
	edge := now.Add(-r.window)
	base := r.ring[r.first]
	for i := 1; i < r.n; i++ {
		s := r.ring[(r.first+i)%len(r.ring)]
		if s.at.After(edge) {
			break
		}
		base = s
	}
	return base
}

func (r *rateSignal) reseed() {
	r.first, r.n = 0, 0
	r.push(r.cur)
	r.reqs, r.errCount = 0, 0
}

// sample reads the counters at now, keeps them in the ring on every r.every-th tick (and in
// an empty ring), and computes the window's counts.
func (r *rateSignal) sample(now time.Time) {
	r.cur = sample{at: now, requests: r.requests.Load(), errors: r.errs.Load()}
	r.ticks++
	if r.n == 0 || r.ticks >= r.every {
		r.push(r.cur)
	}
	base := r.baseline(now)
	r.reqs, r.errCount = r.cur.requests-base.requests, r.cur.errors-base.errors
}

// tripped returns the reason when the window's error rate is over the threshold.
func (r *rateSignal) tripped() string {
	if r.reqs < r.minRequests || float64(r.errCount)/float64(r.reqs) < r.rate {
		return ""
	}
	where := ""
	if r.prefix != "" {
		where = fmt.Sprintf("path %q: ", r.prefix)
	}
	return fmt.Sprintf("passive: %serror rate %.2f >= %.2f over %s (%d/%d requests)",
		where, float64(r.errCount)/float64(r.reqs), r.rate, r.window, r.errCount, r.reqs)
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
// crossed its threshold. It reports whether the trip state changed. After a trip ends, every
// window starts afresh: errors from before and during the cooldown are not held against the
// node again.
func (m *Monitor) passiveEval(now time.Time) (changed bool) {
	p := &m.passive
	inflight := m.inflight.v.Load()
	over := max(m.overPeak.v.Swap(0), inflight)
	for _, r := range p.rates {
		r.sample(now)
	}

	tr := m.trip.Load()
	if tr != nil && !now.Before(tr.until) {
		m.trip.Store(nil)
		tr = nil
		changed = true
		m.log.Debug("passive signal cleared")
		for _, r := range p.rates {
			r.reseed()
		}
		over = inflight // a peak from the cooldown is history
	}
	if tr == nil {
		reason, cooldown := "", p.spec.Cooldown
		if p.maxInFlight > 0 && over > p.maxInFlight {
			reason = fmt.Sprintf("passive: %d requests in flight > %d", over, p.maxInFlight)
		}
		for _, r := range p.rates {
			if reason != "" {
				break
			}
			reason, cooldown = r.tripped(), r.cooldown
		}
		if reason != "" {
			tr = &trip{until: now.Add(cooldown), reason: reason}
			m.trip.Store(tr)
			changed = true
			// The overall "backend unhealthy" line, if health changes, carries the reason.
			m.log.Debug("passive signal tripped", zap.String("reason", reason), zap.Time("until", tr.until))
		}
	}

	var snap PassiveStatus
	if g := p.global; g != nil {
		snap.Requests, snap.Errors, snap.ErrorRate = g.reqs, g.errCount, rate(g.errCount, g.reqs)
	}
	if len(p.paths) > 0 {
		snap.Paths = make([]PathStatus, len(p.paths))
		for i, r := range p.paths {
			snap.Paths[i] = PathStatus{Prefix: r.prefix, Requests: r.reqs, Errors: r.errCount, ErrorRate: rate(r.errCount, r.reqs)}
		}
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

func rate(errs, reqs int64) float64 {
	if reqs == 0 {
		return 0
	}
	return float64(errs) / float64(reqs)
}
