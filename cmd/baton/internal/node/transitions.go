package node

import (
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/batonproxy/baton/lease"
)

// maxTransitions is how many role transitions /status keeps.
const maxTransitions = 20

// Transition is one change of the role people see (Node.role: the
// elector's role, or draining while a demoted node finishes its requests,
// or stopping).
type Transition struct {
	At     time.Time `json:"at"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Reason string    `json:"reason"`
	Term   uint64    `json:"term"`
	Holder string    `json:"holder,omitempty"`
}

// roleBook records the transitions of Node.role, the one role every
// reader (the probe's body, /status, the metrics, the hooks) shows. The
// elector logs its own transitions ("role changed"); the book logs the
// ones only the node sees (into and out of draining, stopping) and keeps
// the last maxTransitions of all of them.
type roleBook struct {
	mu   sync.Mutex
	last lease.Role
	seen bool
	list []Transition // oldest first
}

// observe records a transition if the role changed since the last call.
func (n *Node) observeRole() {
	r := n.role()
	st := n.elector.State()
	b := &n.roles
	b.mu.Lock()
	if b.seen && b.last == r {
		b.mu.Unlock()
		return
	}
	from := ""
	if b.seen {
		from = b.last.String()
	}
	b.last, b.seen = r, true
	holder := ""
	if st.HolderKnown {
		holder = st.Holder.Holder
	}
	reason := st.Reason
	switch r {
	case lease.RoleDraining:
		reason = "finishing requests after a demotion (" + st.Reason + ")"
	case lease.RoleStopping:
		reason = "stopping"
	}
	t := Transition{At: time.Now(), From: from, To: r.String(), Reason: reason, Term: st.Term, Holder: holder}
	b.list = append(b.list, t)
	if len(b.list) > maxTransitions {
		b.list = append(b.list[:0], b.list[len(b.list)-maxTransitions:]...)
	}
	b.mu.Unlock()
	// The elector's own transitions are logged by the elector.
	if from == lease.RoleDraining.String() || r == lease.RoleDraining || r == lease.RoleStopping {
		n.log.Info("role changed", zap.String("from", from), zap.String("to", t.To),
			zap.String("reason", reason), zap.Uint64("term", t.Term), zap.String("holder", holder))
	}
}

// transitions returns the recorded transitions, newest last.
func (n *Node) transitions() []Transition {
	n.roles.mu.Lock()
	defer n.roles.mu.Unlock()
	return append([]Transition(nil), n.roles.list...)
}
