package node

import (
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/batonproxy/baton/lease"
)

// maxTransitions is how many role transitions /status keeps.
const maxTransitions = 20

// Transition is one change of the node's role.
type Transition struct {
	At     time.Time `json:"at"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Reason string    `json:"reason"`
	Term   uint64    `json:"term"`
	Holder string    `json:"holder,omitempty"`
}

// roleOwner owns the node's role (README: Roles): the one answer to "what
// is this node now", from start to exit.
//
// Three things feed it, each through its own method:
//   - the elector, synchronously on every state it publishes (elected, as
//     lease.Config.OnState: after the fence changed, before anyone can see
//     the new state): candidate, active, standby, unhealthy, maintenance,
//     and failsafe while an active node serves on its peers' promises;
//   - the drain: a node that leaves active (or failsafe) is draining from
//     that same instant until its drain ends (drainEnded), unless it is
//     active again first;
//   - the stop sequence (stop): stopping, for good.
//
// Everything that shows the role or acts on it reads it here: the probe
// (beside the fence, Node.probeState), /status, the metrics, the hooks and
// the drains (Node.followRole), the peer link's hello, the scheduled
// events. Each change is one transition: kept (the last maxTransitions)
// and logged once, "role changed" with from, to, reason, term and holder
// (the logger names the node). The elector's own log line of a change is
// at debug level ("election role changed").
//
// What it does not decide: whether a request may start on this node. That
// is the fence (lease.Elector.Fence), read on every request by the clock;
// the role follows the fence, never the other way round.
type roleOwner struct {
	log      *zap.Logger
	stopping atomic.Bool // read without the lock on the probe and peer paths

	mu       sync.Mutex
	el       lease.State // the elector's last published state
	stopWhy  string
	drain    uint64 // the demotion drain under way (its number), 0 when none
	drainWhy string
	drains   uint64 // demotion drains begun
	cur      Transition
	seen     bool
	list     []Transition // oldest first
	changed  chan struct{}
}

// newRoleOwner returns an owner that has no role until the elector's
// first state is fed to it.
func newRoleOwner(log *zap.Logger) *roleOwner {
	return &roleOwner{log: log, changed: make(chan struct{})}
}

// roleView is the role as one consistent reading.
type roleView struct {
	Role  lease.Role
	Now   Transition // how the node came into Role (At: since when)
	Drain uint64     // the demotion drain to run (its number), 0 when none
}

// serving reports whether r may answer the load balancer's probe with 200
// (the fence still decides each request).
func serving(r lease.Role) bool { return r == lease.RoleActive || r == lease.RoleFailsafe }

// elected takes a state the elector published. It runs under the
// elector's lock: it must not call the elector.
func (o *roleOwner) elected(st lease.State) {
	o.mu.Lock()
	defer o.mu.Unlock()
	active := st.Role == lease.RoleActive
	switch {
	case active:
		o.drain = 0 // active again: a drain under way is called off
	case o.seen && serving(o.roleLocked()) && !o.stopping.Load():
		o.drains++
		o.drain = o.drains
		o.drainWhy = "finishing requests after a demotion (" + st.Reason + ")"
	}
	o.el = st
	o.updateLocked()
}

// drainEnded ends the demotion drain numbered drain, if it is still the
// one under way.
func (o *roleOwner) drainEnded(drain uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.drain == drain {
		o.drain = 0
		o.updateLocked()
	}
}

// stop makes the node stopping for good.
func (o *roleOwner) stop(why string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stopping.Store(true)
	o.stopWhy = why
	o.updateLocked()
}

// roleLocked derives the role from the inputs.
func (o *roleOwner) roleLocked() lease.Role {
	r, _ := o.roleReasonLocked()
	return r
}

func (o *roleOwner) roleReasonLocked() (lease.Role, string) {
	switch {
	case o.stopping.Load():
		return lease.RoleStopping, o.stopWhy
	case o.el.Role == lease.RoleActive && o.el.Failsafe:
		return lease.RoleFailsafe, o.el.Reason
	case o.el.Role == lease.RoleActive:
		return lease.RoleActive, o.el.Reason
	case o.drain != 0:
		return lease.RoleDraining, o.drainWhy
	}
	return o.el.Role, o.el.Reason
}

// updateLocked records and logs a transition if the role changed, and
// keeps the current reason and holder up to date if it did not.
func (o *roleOwner) updateLocked() {
	r, why := o.roleReasonLocked()
	holder := ""
	if o.el.HolderKnown {
		holder = o.el.Holder.Holder
	}
	if o.seen && r.String() == o.cur.To {
		o.cur.Reason, o.cur.Term, o.cur.Holder = why, o.el.Term, holder
		return
	}
	t := Transition{At: time.Now(), To: r.String(), Reason: why, Term: o.el.Term, Holder: holder}
	if o.seen {
		t.From = o.cur.To
	}
	o.cur, o.seen = t, true
	o.list = append(o.list, t)
	if len(o.list) > maxTransitions {
		o.list = append(o.list[:0], o.list[len(o.list)-maxTransitions:]...)
	}
	close(o.changed)
	o.changed = make(chan struct{})
	o.log.Info("role changed", zap.String("from", t.From), zap.String("to", t.To),
		zap.String("reason", t.Reason), zap.Uint64("term", t.Term), zap.String("holder", t.Holder))
}

// view returns the role as one reading.
func (o *roleOwner) view() roleView {
	o.mu.Lock()
	defer o.mu.Unlock()
	r, _ := o.roleReasonLocked()
	return roleView{Role: r, Now: o.cur, Drain: o.drain}
}

// role returns the current role.
func (o *roleOwner) role() lease.Role { return o.view().Role }

// isStopping reports whether the stop sequence has begun (lock-free).
func (o *roleOwner) isStopping() bool { return o.stopping.Load() }

// drainsBegun returns how many demotion drains began.
func (o *roleOwner) drainsBegun() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.drains
}

// Changed is closed at the next transition.
func (o *roleOwner) Changed() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.changed
}

// transitions returns the recorded transitions, newest last.
func (o *roleOwner) transitions() []Transition {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Transition(nil), o.list...)
}
