package node

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/batonproxy/baton/config"
	"github.com/batonproxy/baton/internal/azure/schedevents"
	"github.com/batonproxy/baton/lease"
)

// Azure's scheduled events as a planned switchover (README: "Azure's
// maintenance becomes a planned switchover"). While an event of a type in
// azure.step_down_on is pending for this VM:
//
//   - the active node hands the role to a peer that can take it (over the
//     peer link, the handover of `step-down -to`), or without the link steps
//     down; when the link says no peer can take over, or a step-down for
//     this event already found no successor, it stays active and says why;
//   - a node that is not active stays out of candidacy (the elector's
//     maintenance) until the event is over, unless no other node has been
//     active for wait: then it ends the hold and serves, rather than leave
//     nobody serving until the event;
//   - with azure.approve, once out of candidacy and drained, it approves the
//     events that name this VM alone.
//
// The hold is the watcher's own: it is released when the events are over
// only if the operator did not turn maintenance on meanwhile, and the
// operator's `maintenance off` ends it for the events pending then.

// Timing of the follower; variables so that tests can shorten them.
var (
	schedPoll  = schedevents.DefaultInterval // how often the watcher asks IMDS
	schedTick  = 250 * time.Millisecond      // how often the follower re-evaluates without a change
	schedRetry = 5 * time.Second             // between two switchover or approval attempts
	// schedWait, if set, replaces lease.duration + lease.retry_interval as
	// the time a held node waits for another node to be active.
	schedWait time.Duration
)

// schedNode is the node's side of the scheduled events watcher.
type schedNode struct {
	w       *schedevents.Watcher
	approve bool
	wait    time.Duration // a held node serves again after this long with no other node active

	mu         sync.Mutex
	opMaint    bool // the operator's `maintenance on` is in force
	hold       bool // the watcher's maintenance hold is in force
	holdSince  time.Time
	otherSeen  time.Time // another node was last seen active
	noTakeover bool      // the hold ended because no other node became active
	stayWhy    string    // the last "staying active" reason logged
	nextTry    time.Time // no switchover attempt before this
	events     map[string]*schedEvent
}

// schedEvent is what this node did about one pending event.
type schedEvent struct {
	handling    string // for /status
	overridden  bool   // the operator's maintenance off ended the hold for it
	steppedDown bool   // a plain step-down was made for it
	drainsAt    uint64 // approve once the drain counter reached this and no drain runs
	approved    bool
	approveLog  string // the last approval problem logged
	nextApprove time.Time
}

// ScheduledEvent is a pending Azure scheduled event for this VM as /status
// shows it.
type ScheduledEvent struct {
	schedevents.Event
	Handling string `json:"handling,omitempty"` // what this node did about it
	Approved bool   `json:"approved,omitempty"`
}

// newSched builds the watcher of [azure] scheduled_events, or nothing when
// it is off.
func newSched(cfg *config.Config, log *zap.Logger) (*schedNode, error) {
	a := cfg.Azure
	if !a.WatchScheduledEvents() {
		return nil, nil
	}
	w, err := schedevents.New(schedevents.Options{URL: a.IMDSURL, Types: a.StepDownOn, Interval: schedPoll}, log)
	if err != nil {
		return nil, err
	}
	wait := schedWait
	if wait <= 0 {
		// After a step-down another node takes the lease within a retry
		// interval, or at the expiry if the release got lost.
		wait = cfg.Lease.Duration.D() + cfg.Lease.RetryInterval.D()
	}
	return &schedNode{w: w, approve: a.Approve, wait: wait, events: map[string]*schedEvent{}}, nil
}

// runSched runs the watcher and follows its events until ctx ends.
func (n *Node) runSched(ctx context.Context) {
	s := n.sched
	if s == nil {
		return
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { s.w.Run(ctx) })
	t := time.NewTicker(schedTick)
	defer t.Stop()
	for {
		wch, ech := s.w.Changed(), n.elector.Changed()
		n.schedStep(ctx)
		select {
		case <-wch:
		case <-ech:
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// schedStep compares the pending events with the node's state and takes
// at most one action.
func (n *Node) schedStep(ctx context.Context) {
	if n.roles.isStopping() {
		return
	}
	s := n.sched
	pending := s.w.Pending()
	now := time.Now()
	st := n.elector.State()
	active := st.Role == lease.RoleActive
	othersActive := st.HolderKnown && st.Holder.Holder != n.cfg.NodeName

	s.mu.Lock()
	live := map[string]bool{}
	for _, e := range pending {
		live[e.ID] = true
		if s.events[e.ID] == nil {
			s.events[e.ID] = &schedEvent{}
		}
	}
	for id := range s.events {
		if !live[id] {
			delete(s.events, id)
		}
	}
	if othersActive && !active {
		s.otherSeen = now
	}
	var relevant []schedevents.Event
	for _, e := range pending {
		if !s.events[e.ID].overridden {
			relevant = append(relevant, e)
		}
	}
	if len(relevant) == 0 {
		s.stayWhy, s.noTakeover = "", false
		if s.hold {
			s.releaseLocked(n)
			n.log.Info("Azure scheduled events for this VM are over: back in candidacy",
				zap.Bool("operator_maintenance", s.opMaint))
			n.schedAction("release")
		}
		s.mu.Unlock()
		return
	}
	ev := relevant[0] // started ones first, then the earliest
	se := s.events[ev.ID]

	if active {
		if now.Before(s.nextTry) {
			s.mu.Unlock()
			return
		}
		target, why := n.schedTarget(se)
		if why != "" {
			se.handling = "staying active: " + why
			if why != s.stayWhy {
				s.stayWhy = why
				n.log.Warn("Azure scheduled event for this VM: staying active, no other node can take over",
					append(schedevents.EventFields(ev), zap.String("why", why))...)
				n.schedAction("stay_active")
			}
			s.mu.Unlock()
			return
		}
		s.nextTry = now.Add(schedRetry)
		s.mu.Unlock()
		n.schedSwitchover(ctx, ev, target)
		return
	}

	switch {
	case othersActive:
		s.noTakeover = false
		s.holdLocked(n, ev, se, now)
	case s.noTakeover:
		// Nobody else is active: this node serves until another one is.
	case !s.hold:
		s.holdLocked(n, ev, se, now)
	case now.Sub(later(s.otherSeen, s.holdSince)) >= s.wait:
		s.noTakeover = true
		s.releaseLocked(n)
		se.handling = "no other node is active: serving until one is"
		n.log.Warn("Azure scheduled event for this VM: no other node is active, ending the hold so that this node can serve",
			append(schedevents.EventFields(ev), zap.Duration("waited", s.wait))...)
		n.schedAction("no_takeover")
	}
	approve := n.schedApprovals(relevant, now)
	s.mu.Unlock()
	for _, e := range approve {
		n.schedApprove(ctx, e)
	}
}

// schedTarget says how the active node leaves for the event: to the named
// peer, by a plain step-down (both ""), or not at all (why says why).
func (n *Node) schedTarget(se *schedEvent) (target, why string) {
	if n.link == nil {
		if se.steppedDown {
			return "", "it stepped down for this event already and no other node took over"
		}
		return "", ""
	}
	var no []string
	for _, p := range n.link.Peers() {
		name := p.Node
		if name == "" {
			name = "?"
		}
		switch {
		case !p.Reachable:
			no = append(no, name+" at "+p.Address+": unreachable")
		case p.Node == "":
			no = append(no, "the peer at "+p.Address+": name unknown")
		case p.Active:
			no = append(no, name+": active")
		case p.Role == lease.RoleStandby.String() || p.Role == lease.RoleCandidate.String() || p.Role == lease.RoleDraining.String():
			return p.Node, ""
		default:
			no = append(no, name+": "+p.Role)
		}
	}
	if len(no) == 0 {
		return "", "the peer link knows no peer"
	}
	return "", "the peer link says no peer can take over (" + strings.Join(no, "; ") + ")"
}

// schedSwitchover hands the role to target, or steps down when target is
// "", and holds the node out of candidacy afterwards. If the node is still
// active afterwards (the target refused), it stays active and says why.
func (n *Node) schedSwitchover(ctx context.Context, ev schedevents.Event, target string) {
	s := n.sched
	drains := n.drainStatus().Drains
	by := "Azure scheduled event " + ev.Type + " " + ev.ID
	action, handling := "step_down", "stepped down"
	var err error
	if target != "" {
		hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err = n.stepDownTo(hctx, target, by)
		cancel()
		action, handling = "handover", "handed over to "+target
	} else {
		err = n.elector.StepDown(by)
		if errors.Is(err, lease.ErrNotActive) {
			err = nil // demoted meanwhile: hold all the same
		}
	}
	_, stillActive := n.elector.Fence()
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.events[ev.ID]
	if se == nil {
		se = &schedEvent{}
		s.events[ev.ID] = se
	}
	if stillActive && err != nil {
		why := "the switchover failed: " + err.Error()
		se.handling = "staying active: " + why
		if why != s.stayWhy {
			s.stayWhy = why
			n.log.Warn("Azure scheduled event for this VM: staying active, no other node can take over",
				append(schedevents.EventFields(ev), zap.String("why", why))...)
			n.schedAction("stay_active")
		}
		return
	}
	s.stayWhy, s.noTakeover = "", false
	se.drainsAt = drains + 1
	se.steppedDown = se.steppedDown || target == ""
	fields := schedevents.EventFields(ev)
	if target != "" {
		fields = append(fields, zap.String("to", target))
	}
	if err != nil {
		action, handling = "step_down", "handover to "+target+" failed, lease released"
		fields = append(fields, zap.Error(err))
	}
	se.handling = handling
	n.log.Info("Azure scheduled event for this VM: planned switchover, "+handling, fields...)
	n.schedAction(action)
	s.holdLocked(n, ev, se, now)
	se.handling = handling + "; held out of candidacy until the event is over"
}

// holdLocked turns the watcher's hold on (the elector's maintenance, unless
// the operator's is on already).
func (s *schedNode) holdLocked(n *Node, ev schedevents.Event, se *schedEvent, now time.Time) {
	if se.handling == "" || strings.HasPrefix(se.handling, "staying active") || strings.HasPrefix(se.handling, "no other node") {
		se.handling = "held out of candidacy until the event is over"
	}
	if s.hold {
		return
	}
	s.hold, s.holdSince = true, now
	if !s.opMaint {
		n.elector.SetMaintenance(true)
	}
	n.log.Info("Azure scheduled event for this VM: out of candidacy until it is over", schedevents.EventFields(ev)...)
	n.schedAction("hold")
}

// releaseLocked turns the watcher's hold off; the operator's maintenance,
// if on, stays.
func (s *schedNode) releaseLocked(n *Node) {
	if !s.hold {
		return
	}
	s.hold = false
	if !s.opMaint {
		n.elector.SetMaintenance(false)
	}
}

// schedApprovals returns the events to approve now: with azure.approve,
// scheduled events that name this VM alone, once the node is out of
// candidacy and its drain is over.
func (n *Node) schedApprovals(relevant []schedevents.Event, now time.Time) []schedevents.Event {
	s := n.sched
	if !s.approve || !s.hold && !s.opMaint || s.noTakeover || n.elector.State().Role == lease.RoleActive {
		return nil
	}
	vm := s.w.VMName()
	d := n.drainStatus()
	var out []schedevents.Event
	for _, e := range relevant {
		se := s.events[e.ID]
		if se.approved || e.Status != schedevents.StatusScheduled || now.Before(se.nextApprove) {
			continue
		}
		if !e.Only(vm) {
			if se.approveLog != "others" {
				se.approveLog = "others"
				n.log.Info("Azure scheduled event not approved: it names other VMs too, and an approval would start it for them",
					schedevents.EventFields(e)...)
			}
			continue
		}
		if d.Draining || d.Drains < se.drainsAt {
			continue
		}
		out = append(out, e)
	}
	return out
}

func (n *Node) schedApprove(ctx context.Context, e schedevents.Event) {
	s := n.sched
	err := s.w.Approve(ctx, e.ID)
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.events[e.ID]
	if se == nil {
		return
	}
	if err != nil {
		se.nextApprove = time.Now().Add(schedRetry)
		n.schedAction("approve_failed")
		if msg := err.Error(); se.approveLog != msg {
			se.approveLog = msg
			n.log.Warn("Azure scheduled event: approval failed, trying again", append(schedevents.EventFields(e), zap.Error(err))...)
		}
		return
	}
	se.approved = true
	n.log.Info("Azure scheduled event approved: out of candidacy and drained, Azure may start it now", schedevents.EventFields(e)...)
	n.schedAction("approve")
}

// setMaintenance is the operator's `baton maintenance on|off`. Turning it
// off also ends the watcher's hold, for the events pending now.
func (n *Node) setMaintenance(on bool) {
	s := n.sched
	if s == nil {
		n.elector.SetMaintenance(on)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opMaint = on
	if !on && s.hold {
		s.hold = false
		var ids []string
		for id, se := range s.events {
			se.overridden = true
			se.handling = "hold ended by the operator (maintenance off)"
			ids = append(ids, id)
		}
		slices.Sort(ids)
		n.log.Warn("maintenance turned off by the operator: the hold for the pending Azure scheduled events ends, they are not acted on again",
			zap.Strings("event_ids", ids))
		n.schedAction("operator_override")
	}
	n.elector.SetMaintenance(on)
}

// schedStatus is the pending events for /status, and why IMDS gave no
// answer ("" when it did).
func (n *Node) schedStatus() ([]ScheduledEvent, string) {
	s := n.sched
	if s == nil {
		return nil, ""
	}
	st := s.w.State()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ScheduledEvent
	for _, e := range st.Pending {
		se := ScheduledEvent{Event: e}
		if x := s.events[e.ID]; x != nil {
			se.Handling, se.Approved = x.handling, x.approved
		}
		out = append(out, se)
	}
	return out, st.LastError
}

func (n *Node) schedAction(action string) {
	n.metrics.schedActions.WithLabelValues(action).Inc()
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

var (
	descSchedPending = prometheus.NewDesc(ns+"_scheduled_events_pending", "Azure scheduled events of the watched types pending for this VM.", nil, nil)
	descIMDSUp       = prometheus.NewDesc(ns+"_scheduled_events_imds_up", "1 when the last scheduled events poll got a document from the metadata service.", nil, nil)
)

// schedCollector reports the watcher's state at scrape time (nothing when
// [azure] scheduled_events is off).
type schedCollector struct{ n *Node }

func (c schedCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSchedPending
	ch <- descIMDSUp
}

func (c schedCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.n.sched
	if s == nil {
		return
	}
	st := s.w.State()
	ch <- prometheus.MustNewConstMetric(descSchedPending, prometheus.GaugeValue, float64(len(st.Pending)))
	ch <- prometheus.MustNewConstMetric(descIMDSUp, prometheus.GaugeValue, b2f(st.Up))
}
