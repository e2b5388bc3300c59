package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// DefaultHistory is how many results a check keeps when Options.History is zero.
const DefaultHistory = 10

// CheckSpec is one active check run by a Monitor.
type CheckSpec struct {
	Name     string        // unique, shown in reasons: check "app": ...
	Interval time.Duration // time between the end of one run and the next tick
	Timeout  time.Duration // deadline of each run's context
	Rise     int           // consecutive passes that make the check healthy; 0 means 1
	Fall     int           // consecutive failures that make it unhealthy; 0 means 1
	Required bool          // only required checks decide Healthy()
	Checker  Checker
}

// PassiveSpec configures the signals taken from live traffic. The zero value turns them off.
type PassiveSpec struct {
	// ErrorRate in (0, 1] turns on the error-rate signal: over the last Window, if at least
	// MinRequests requests completed and errors/requests >= ErrorRate, the node is unhealthy
	// for Cooldown. An error is a status >= 500 or a proxy error.
	ErrorRate   float64
	Window      time.Duration
	MinRequests int // 0 means 1
	// MaxInFlight > 0 turns on the overload signal: more requests in flight than this makes
	// the node unhealthy for Cooldown.
	MaxInFlight int
	Cooldown    time.Duration // required when a signal is on
	// Paths are error-rate signals over the requests under a path prefix, beside the global
	// one (see PathSpec); at most MaxPathRules. They count what RequestDonePath reports.
	Paths []PathSpec
}

// Options configures a Monitor.
type Options struct {
	Checks  []CheckSpec
	Passive PassiveSpec
	History int // results kept per check; 0 means DefaultHistory
	// Now is the clock for result times, durations and the passive window; nil means time.Now.
	// Tickers and timeouts use the time package (tests run them under testing/synctest).
	Now func() time.Time
	// StartHealthy starts every check healthy instead of unhealthy-until-rise. A live reload uses
	// it to carry a healthy verdict over to a new Monitor, so that the reload itself does not flip
	// the node; the fall thresholds apply from the first result on.
	StartHealthy bool
	// OnResult, if set, is called after every check run (for metrics). It runs on the check's
	// goroutine and must be quick.
	OnResult func(check string, r Result)
}

// Monitor runs the active checks, gathers the passive signals and publishes whether the local
// backend is healthy. Create it with New, then Start and Stop it once.
type Monitor struct {
	log      *zap.Logger
	now      func() time.Time
	checks   []*check
	onResult func(string, Result)

	// Request-path counters, each on its own cache line: proxies call RequestStarted and
	// RequestDone from many goroutines at once.
	inflight paddedInt64
	requests paddedInt64 // completed requests since New
	errs     paddedInt64 // completed requests that were errors
	overPeak paddedInt64 // highest in-flight count above MaxInFlight since the last passive tick
	// The path rules' prefixes and counters (PassiveSpec.Paths, in order), read on the request
	// path by RequestDonePath.
	pathPrefixes []string
	pathCounts   []counter

	passive passiveState
	trip    atomic.Pointer[trip] // non-nil while a passive signal holds the node unhealthy

	verdict atomic.Pointer[verdict]
	changed atomic.Pointer[signal]

	pending    atomic.Int64 // checks that have not completed their first run
	firstDone  atomic.Bool
	firstRound chan struct{}

	evalMu sync.Mutex // serialises evaluate: one log line and one broadcast per change
	logged logState   // guarded by evalMu
	flaps  atomic.Int64

	lifeMu  sync.Mutex
	started bool
	stopped bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

type paddedInt64 struct {
	v atomic.Int64
	_ [56]byte
}

// verdict is the published value of Healthy().
type verdict struct {
	ok     bool
	reason string
}

// signal is a channel closed on the next change: a latest-value broadcast.
type signal struct{ ch chan struct{} }

type logState int

const (
	loggedNone logState = iota
	loggedHealthy
	loggedUnhealthy
)

// New validates o and returns a Monitor that is not started. The node is unhealthy until the
// required checks rise.
func New(o Options, log *zap.Logger) (*Monitor, error) {
	if log == nil {
		return nil, errors.New("healthcheck: nil logger")
	}
	if o.History < 0 {
		return nil, fmt.Errorf("healthcheck: history %d is negative", o.History)
	}
	if o.History == 0 {
		o.History = DefaultHistory
	}
	m := &Monitor{
		log:        log.Named("healthcheck"),
		now:        o.Now,
		firstRound: make(chan struct{}),
		onResult:   o.OnResult,
	}
	if m.now == nil {
		m.now = time.Now
	}
	seen := make(map[string]bool, len(o.Checks))
	for _, s := range o.Checks {
		if err := validateCheck(s); err != nil {
			return nil, err
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("healthcheck: check %q: duplicate name", s.Name)
		}
		seen[s.Name] = true
		s.Rise = max(s.Rise, 1)
		s.Fall = max(s.Fall, 1)
		c := &check{spec: s, history: make([]Result, 0, o.History)}
		if t, ok := s.Checker.(typed); ok {
			c.typ = t.Type()
		}
		m.checks = append(m.checks, c)
	}
	if n := len(o.Passive.Paths); n > 0 && n <= MaxPathRules {
		m.pathCounts = make([]counter, n)
		for _, ps := range o.Passive.Paths {
			m.pathPrefixes = append(m.pathPrefixes, ps.Prefix)
		}
	}
	if err := m.passive.init(o.Passive, &m.requests.v, &m.errs.v, m.pathCounts); err != nil {
		return nil, err
	}
	m.pending.Store(int64(len(m.checks)))
	m.verdict.Store(&verdict{ok: false, reason: "health checks not started"})
	if o.StartHealthy {
		for _, c := range m.checks {
			c.healthy.Store(true)
			c.passes = c.spec.Rise
		}
		m.verdict.Store(&verdict{ok: true})
		m.logged = loggedHealthy
	}
	m.changed.Store(&signal{ch: make(chan struct{})})
	return m, nil
}

func validateCheck(s CheckSpec) error {
	switch {
	case s.Name == "":
		return errors.New("healthcheck: check with empty name")
	case s.Checker == nil:
		return fmt.Errorf("healthcheck: check %q: no checker", s.Name)
	case s.Interval <= 0:
		return fmt.Errorf("healthcheck: check %q: interval %s must be > 0", s.Name, s.Interval)
	case s.Timeout <= 0:
		return fmt.Errorf("healthcheck: check %q: timeout %s must be > 0", s.Name, s.Timeout)
	case s.Rise < 0:
		return fmt.Errorf("healthcheck: check %q: rise %d is negative", s.Name, s.Rise)
	case s.Fall < 0:
		return fmt.Errorf("healthcheck: check %q: fall %d is negative", s.Name, s.Fall)
	}
	return nil
}

// Start runs the first round of all checks at once, then each check on its own ticker, and the
// passive evaluation if configured. It returns immediately. Checks run with contexts derived
// from ctx; cancelling ctx stops them like Stop does, but only Stop waits for them. Start after
// Start or Stop does nothing.
func (m *Monitor) Start(ctx context.Context) {
	m.lifeMu.Lock()
	defer m.lifeMu.Unlock()
	if m.started || m.stopped {
		return
	}
	m.started = true
	ctx, m.cancel = context.WithCancel(ctx)
	if len(m.checks) == 0 {
		m.firstDone.Store(true)
		m.evaluate()
		close(m.firstRound)
	} else {
		m.evaluate()
	}
	for _, c := range m.checks {
		m.wg.Add(1)
		go m.runCheck(ctx, c)
	}
	if m.passive.on() {
		m.passiveEval(m.now()) // the window starts now; the goroutine owns the ring from here
		m.wg.Add(1)
		go m.runPassive(ctx)
	}
}

// Stop cancels the checks in flight, waits for every goroutine of the Monitor to return and
// closes the HTTP checks' idle connections. It is idempotent and safe to call concurrently.
// Results of cancelled runs are discarded, so stopping never flips Healthy().
func (m *Monitor) Stop() {
	m.lifeMu.Lock()
	m.stopped = true
	cancel := m.cancel
	m.lifeMu.Unlock()
	if cancel != nil {
		cancel()
	}
	m.wg.Wait()
	for _, c := range m.checks {
		if ic, ok := c.spec.Checker.(idleCloser); ok {
			ic.CloseIdleConnections()
		}
	}
}

// Healthy reports whether every required check is healthy and no passive signal is tripped.
// When not, reason names each failing check and its last error, and the passive signal, joined
// by "; ", e.g. `check "app": GET http://127.0.0.1:8080/: connection refused`. It is one atomic
// load.
func (m *Monitor) Healthy() (ok bool, reason string) {
	v := m.verdict.Load()
	return v.ok, v.reason
}

// Changed returns a channel closed on the next change of Healthy()'s ok value (the reason may
// change without it). Take the channel before reading Healthy() so no change is missed:
//
//	ch := m.Changed()
//	ok, reason := m.Healthy()
//	... <-ch
//
// It never blocks the checkers.
func (m *Monitor) Changed() <-chan struct{} {
	return m.changed.Load().ch
}

// FirstRoundDone returns a channel closed once every check has completed one run, after
// Healthy() has taken the first round into account. It is closed at Start when there are no
// checks, and never if the Monitor stops before the first round completes.
func (m *Monitor) FirstRoundDone() <-chan struct{} {
	return m.firstRound
}

// RequestStarted counts a request sent to the local backend as in flight. Call it on every
// such request, with RequestDone when it ends. It is one atomic add (and, only when the
// overload limit is exceeded, a compare-and-swap).
func (m *Monitor) RequestStarted() {
	n := m.inflight.v.Add(1)
	if limit := m.passive.maxInFlight; limit > 0 && n > limit {
		for {
			p := m.overPeak.v.Load()
			if n <= p || m.overPeak.v.CompareAndSwap(p, n) {
				return
			}
		}
	}
}

// RequestDone ends a request counted by RequestStarted. A status >= 500 or proxyErr counts as
// an error for the error-rate signal. It is two or three atomic adds: the window is computed
// by the Monitor's passive ticker, not here. The path rules do not see it: use
// RequestDonePath for them.
func (m *Monitor) RequestDone(status int, proxyErr bool) {
	m.inflight.v.Add(-1)
	m.requests.v.Add(1)
	if proxyErr || status >= 500 {
		m.errs.v.Add(1)
	}
}

// RequestDonePath is RequestDone for a request to path (the URL path the client asked for):
// it also counts the request, and the error, for every path rule whose prefix path starts
// with. Beyond RequestDone it costs one prefix comparison per rule and one or two atomic adds
// per matching rule; no lock, no clock, no allocation.
func (m *Monitor) RequestDonePath(path string, status int, proxyErr bool) {
	m.RequestDone(status, proxyErr)
	if len(m.pathPrefixes) == 0 {
		return
	}
	isErr := proxyErr || status >= 500
	for i, prefix := range m.pathPrefixes {
		if strings.HasPrefix(path, prefix) {
			c := &m.pathCounts[i]
			c.requests.Add(1)
			if isErr {
				c.errs.Add(1)
			}
		}
	}
}

// runCheck runs c once, then on every tick until ctx is done.
func (m *Monitor) runCheck(ctx context.Context, c *check) {
	defer m.wg.Done()
	if !m.runOnce(ctx, c) {
		return
	}
	if m.pending.Add(-1) == 0 {
		m.firstDone.Store(true)
		m.evaluate()
		close(m.firstRound)
	} else {
		m.evaluate()
	}
	t := time.NewTicker(c.spec.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if !m.runOnce(ctx, c) {
				return
			}
			m.evaluate()
		}
	}
}

// runOnce runs the check under its timeout and records the result. It reports false, and
// records nothing, when ctx (the Monitor's) ended during the run: a cancelled run says nothing
// about the backend.
func (m *Monitor) runOnce(ctx context.Context, c *check) bool {
	cctx, cancel := withCheckTimeout(ctx, c.spec.Timeout)
	start := m.now()
	out, err := m.safeCheck(cctx, c)
	elapsed := m.now().Sub(start)
	timedOut := errors.Is(cctx.Err(), context.DeadlineExceeded)
	cancel()
	if ctx.Err() != nil {
		return false
	}
	res := Result{At: start, OK: err == nil, Duration: elapsed, Output: out}
	if err != nil {
		res.Reason = reasonOf(err, timedOut, c.spec.Timeout)
	}
	c.record(res, m.log)
	if m.onResult != nil {
		m.onResult(c.spec.Name, res)
	}
	return true
}

// reasonOf is the text of a check's error; a bare context error from a custom Checker that hit
// its deadline becomes "timeout after 1s".
func reasonOf(err error, timedOut bool, timeout time.Duration) string {
	var ce *checkError
	if timedOut && !errors.As(err, &ce) && errors.Is(err, context.DeadlineExceeded) {
		return "timeout after " + timeout.String()
	}
	if s := err.Error(); s != "" {
		return s
	}
	return "failed"
}

func (m *Monitor) safeCheck(ctx context.Context, c *check) (out string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("checker panicked: %v", p)
			if c.panicked.CompareAndSwap(false, true) { // once per check, not once per run
				m.log.Error("health checker panicked", zap.String("check", c.spec.Name),
					zap.Any("panic", p), zap.Stack("stack"))
			}
		}
	}()
	return c.spec.Checker.Check(ctx)
}

// evaluate recomputes the verdict from the checks and the passive trip, publishes it, and on a
// change of ok broadcasts it and logs one line. The first round's failure is logged too (the
// node starts unhealthy, so there is no change to log otherwise), but a check that merely has
// not risen yet is not.
func (m *Monitor) evaluate() {
	m.evalMu.Lock()
	defer m.evalMu.Unlock()

	var reasons []string
	failing := "" // first failing check, or "passive", for the log line
	real := false // some reason is an actual failure, not "not checked yet" or "rising"
	for _, c := range m.checks {
		if !c.spec.Required {
			continue
		}
		healthy, r, failed := c.state()
		if healthy {
			continue
		}
		if failing == "" {
			failing = c.spec.Name
		}
		reasons = append(reasons, fmt.Sprintf("check %q: %s", c.spec.Name, r))
		real = real || failed
	}
	if tr := m.trip.Load(); tr != nil {
		if failing == "" {
			failing = "passive"
		}
		reasons = append(reasons, tr.reason)
		real = true
	}
	v := &verdict{ok: len(reasons) == 0, reason: strings.Join(reasons, "; ")}
	prev := m.verdict.Swap(v)

	if v.ok != prev.ok {
		m.flaps.Add(1)
		old := m.changed.Swap(&signal{ch: make(chan struct{})})
		close(old.ch)
	}
	switch {
	case v.ok && m.logged != loggedHealthy:
		m.logged = loggedHealthy
		m.log.Info("backend healthy")
	case !v.ok && (m.logged == loggedHealthy || m.logged == loggedNone && real && m.firstDone.Load()):
		m.logged = loggedUnhealthy
		m.log.Warn("backend unhealthy", zap.String("check", failing), zap.String("reason", v.reason))
	}
}

// check is one CheckSpec's state. Only its own goroutine records results; Status and evaluate
// read it under mu.
type check struct {
	spec     CheckSpec
	typ      string
	healthy  atomic.Bool
	panicked atomic.Bool

	mu         sync.Mutex
	passes     int // consecutive
	fails      int // consecutive
	flaps      int
	lastReason string
	history    []Result // oldest first, at most cap(history)
}

// record adds a result and applies the rise/fall thresholds. The healthy flag flips by
// compare-and-swap, so the per-check log line fires on transitions only.
func (c *check) record(res Result, log *zap.Logger) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.history) == cap(c.history) {
		copy(c.history, c.history[1:])
		c.history = c.history[:len(c.history)-1]
	}
	c.history = append(c.history, res)
	if res.OK {
		c.passes++
		c.fails = 0
	} else {
		c.fails++
		c.passes = 0
		c.lastReason = res.Reason
	}
	// The overall "backend healthy/unhealthy" line covers required checks; an optional check
	// has no other way to be noticed in the log.
	level := zap.DebugLevel
	if !c.spec.Required {
		level = zap.InfoLevel
	}
	switch {
	case res.OK && c.passes >= c.spec.Rise && c.healthy.CompareAndSwap(false, true):
		c.flaps++
		log.Check(level, "check healthy").Write(zap.String("check", c.spec.Name), zap.Bool("required", c.spec.Required))
	case !res.OK && c.fails >= c.spec.Fall && c.healthy.CompareAndSwap(true, false):
		c.flaps++
		log.Check(level, "check unhealthy").Write(zap.String("check", c.spec.Name), zap.Bool("required", c.spec.Required), zap.String("reason", res.Reason))
	}
}

// state returns whether the check is healthy and, if not, why; failed is false while it has
// not run yet or is rising (passing, but fewer than Rise times in a row).
func (c *check) state() (healthy bool, reason string, failed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.healthy.Load():
		return true, "", false
	case len(c.history) == 0:
		return false, "not checked yet", false
	case c.fails > 0:
		return false, c.lastReason, true
	default:
		return false, fmt.Sprintf("rising, %d of %d passes", c.passes, c.spec.Rise), false
	}
}
