package node

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/batonproxy/baton/config"
	"github.com/batonproxy/baton/internal/instance"
	"github.com/batonproxy/baton/lease"
	"github.com/batonproxy/baton/peer"
)

// takeInstance takes the host's instance lock for this configuration and
// gives a Keyed lock the durable lease ID, so that a process restarted
// after a crash takes its predecessor's lease over at once. It fills the
// elector configuration's IDs, Inherited and InheritGrace.
func takeInstance(cfg *config.Config, lock lease.Lock, ec *lease.Config) (*instance.Lock, error) {
	inst, err := instance.Acquire(cfg.Lease.StateDir, instance.FileName(cfg.NodeName, leaseTarget(cfg)))
	if err != nil {
		return nil, err
	}
	k, ok := lock.(lease.Keyed)
	if !ok {
		return inst, nil
	}
	id, inherited, err := inst.LeaseID()
	if err != nil {
		inst.Close()
		return nil, fmt.Errorf("lease.state_dir: %w", err)
	}
	k.SetLeaseID(id)
	ec.IDs, ec.Inherited = inst, inherited
	// A healthy backend rises within (rise-1) × interval plus one answer:
	// give it all of rise × interval + timeout before releasing the lease
	// a dead predecessor left.
	ec.InheritGrace = time.Second
	for _, c := range cfg.Health.Checks {
		if c.Required != nil && !*c.Required {
			continue
		}
		ec.InheritGrace = max(ec.InheritGrace, time.Duration(max(c.Rise, 1))*c.Interval.D()+c.Timeout.D())
	}
	return inst, nil
}

// leaseTarget names the lease a configuration competes for.
func leaseTarget(cfg *config.Config) string {
	if cfg.Lease.Backend == "file" {
		p, err := filepath.Abs(cfg.Lease.File.Path)
		if err != nil {
			p = cfg.Lease.File.Path
		}
		return "file:" + p
	}
	a := cfg.Lease.AzBlob
	return "azblob:" + a.AccountURL + "/" + a.Container + "/" + a.Blob
}

// newLink builds the peer link of [peer], or returns nil when it is off.
func newLink(cfg *config.Config, n *Node, log *zap.Logger) (*peer.Link, error) {
	if cfg.Peer.Listen == "" {
		return nil, nil
	}
	secret, err := config.ReadSecret(cfg.Peer.SecretEnv, cfg.Peer.SecretFile)
	if err != nil {
		return nil, fmt.Errorf("peer: %w", err)
	}
	return peer.New(peer.Options{
		NodeName: cfg.NodeName,
		Secret:   []byte(secret),
		Peers:    cfg.Peer.Peers,
		Timeout:  cfg.Peer.Timeout.D(),
		OnPeer:   n.metrics.onPeer,
	}, linkLocal{n}, log)
}

// linkLocal is this node's side of the peer link.
type linkLocal struct{ n *Node }

func (l linkLocal) Hello() peer.Hello {
	term, active := l.n.elector.Fence()
	if l.n.roles.isStopping() {
		active = false
	}
	if !active {
		term = l.n.elector.State().Term
	}
	return peer.Hello{Node: l.n.cfg.NodeName, Role: l.n.roles.role().String(), Active: active, Term: term}
}

func (l linkLocal) Nudge()                             { l.n.elector.Nudge() }
func (l linkLocal) Withdraw(from string, round uint64) { l.n.elector.Withdraw(from, round) }

// Promise binds this node to stand by for the active node from (failsafe).
// A stopping node promises too: it will never be active again.
func (l linkLocal) Promise(from string, round uint64, window time.Duration) error {
	_, err := l.n.elector.Promise(from, round, window)
	if err == nil {
		l.n.metrics.promisesGiven.Inc()
	}
	return err
}
func (l linkLocal) NoteHolder(rec lease.Record) { l.n.elector.NoteHolder(rec) }
func (l linkLocal) NewLeaseID() string          { return instance.NewGUID() }

func (l linkLocal) CanAdopt() error {
	if l.n.roles.isStopping() {
		return fmt.Errorf("%w: stopping", lease.ErrNotEligible)
	}
	return l.n.elector.CanAdopt()
}

func (l linkLocal) Adopt(ctx context.Context, id string) (lease.Record, error) {
	if l.n.roles.isStopping() {
		return lease.Record{}, fmt.Errorf("%w: stopping", lease.ErrNotEligible)
	}
	return l.n.elector.Adopt(ctx, id)
}

// onLeaseEvent feeds the metrics and the history, and pushes releases and
// acquisitions to the peers. It runs on the election loop; the pushes go out in the
// background.
func (n *Node) onLeaseEvent(ev lease.Event) {
	n.metrics.onLeaseEvent(ev)
	n.hist.OnEvent(ev) // queued: written by the history's own goroutine
	if n.link == nil {
		return
	}
	switch ev.Kind {
	case lease.EventReleased:
		n.link.Released(ev.Term)
	case lease.EventAcquired:
		n.link.Acquired(ev.Holder)
	}
}

// stepDownTo hands the role to the named node over the peer link, as
// requested by by (the operator, a scheduled event).
func (n *Node) stepDownTo(ctx context.Context, node, by string) (lease.Record, error) {
	if n.link == nil {
		return lease.Record{}, errNoLink
	}
	h, err := n.link.Handover(ctx, node)
	if err != nil {
		return lease.Record{}, err
	}
	n.hist.HandingOverTo(node)
	return n.elector.StepDownTo(ctx, "step-down to "+node+" requested by "+by, h)
}

var errNoLink = fmt.Errorf("step-down to a named node needs the peer link: set [peer] listen, peers and a secret")
