package node

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/batonproxy/baton/lease"
)

// leader adapts the elector to the proxy's Leader: where the active node
// accepts forwarded requests.
type leader struct {
	el   *lease.Elector
	self string
}

func (l leader) ActiveURL() (string, bool) {
	st := l.el.State()
	if !st.HolderKnown || st.Holder.Holder == l.self || st.Holder.AdvertiseURL == "" {
		return "", false
	}
	return st.Holder.AdvertiseURL, true
}

func (l leader) Changed() <-chan struct{} { return l.el.Changed() }

// Seek makes the elector read the holder record every lease.SeekInterval
// while requests wait for an active node.
func (l leader) Seek(window time.Duration) { l.el.Seek(window) }

// DrainStatus describes the last drain for /status.
type DrainStatus struct {
	Draining        bool      `json:"draining"`
	Drains          uint64    `json:"drains"`
	LastStarted     time.Time `json:"last_started,omitzero"`
	LastTookMS      int64     `json:"last_took_ms"`
	LastCutRequests int64     `json:"last_cut_requests"`
	LastCutUpgraded int       `json:"last_cut_upgraded"`
}

type drainState struct {
	mu sync.Mutex
	st DrainStatus
}

func (d *drainState) get() DrainStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st
}

// followRole runs the drain (README: Drain on demotion) on every demotion and turns
// keep-alives back on at every promotion. The fence is already off when the
// elector publishes the demotion, so no new request starts locally.
func (n *Node) followRole(ctx context.Context) {
	wasActive := false
	var wg sync.WaitGroup
	defer wg.Wait()
	cancelDrain := func() {}
	defer func() { cancelDrain() }()
	for {
		changed := n.elector.Changed()
		active := n.elector.State().Role == lease.RoleActive
		st := n.elector.State()
		switch {
		case active && !wasActive:
			cancelDrain()
			n.setKeepAlives(true)
			n.hooks.fire("active", st)
		case !active && wasActive:
			n.hooks.fire("standby", st)
			if n.stopping.Load() {
				break // the stop sequence drains
			}
			cancelDrain()
			dctx, cancel := context.WithTimeout(ctx, n.live.Load().Drain.Timeout.D())
			cancelDrain = cancel
			start := n.beginDrain() // draining from this instant: one transition, not two
			wg.Go(func() { n.runDrain(dctx, start) })
		}
		wasActive = active
		n.observeRole()
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

// beginDrain marks the node draining and returns when that started.
func (n *Node) beginDrain() time.Time {
	start := time.Now()
	n.drain.mu.Lock()
	n.drain.st.Draining, n.drain.st.LastStarted = true, start
	n.drain.st.Drains++
	n.drain.mu.Unlock()
	return start
}

// runDrain ends a demotion: idle keep-alive connections close now, busy ones
// after their current response (Connection: close), in-flight requests get
// until ctx's deadline, and what is left then is cut off and counted. The
// listeners stay open: the node is a standby now.
func (n *Node) runDrain(ctx context.Context, start time.Time) {

	// Keep clients connected (their requests are forwarded) until the load
	// balancer has had time to see the new active's probe; only then push
	// them to reconnect.
	hold := n.live.Load().Drain.ExitDelay.D()
	n.proxy.HoldClients(start.Add(hold))
	t := time.NewTimer(hold)
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()
	n.setKeepAlives(false)
	n.proxy.WaitIdle(ctx)
	if n.proxy.Upgraded() > 0 {
		// Upgraded connections have no end of their own: they are closed
		// at the drain deadline at the latest.
		<-ctx.Done()
	}
	var reqs int64
	var upgraded int
	if ctx.Err() == context.DeadlineExceeded {
		reqs, upgraded = n.proxy.CutOff()
	}
	n.metrics.drains.Inc()
	n.metrics.cutRequests.Add(float64(reqs))
	n.metrics.cutUpgraded.Add(float64(upgraded))
	took := time.Since(start)
	n.drain.mu.Lock()
	n.drain.st.Draining = false
	n.drain.st.LastTookMS = took.Milliseconds()
	n.drain.st.LastCutRequests, n.drain.st.LastCutUpgraded = reqs, upgraded
	n.drain.mu.Unlock()
	n.observeRole()
	if reqs > 0 || upgraded > 0 {
		n.log.Warn("drain deadline passed, cut off what was left",
			zap.Int64("requests", reqs), zap.Int("upgraded_connections", upgraded),
			zap.Duration("drain_timeout", n.live.Load().Drain.Timeout.D()))
		return
	}
	n.log.Info("drain finished", zap.Duration("took", took.Round(time.Millisecond)))
}

func (n *Node) setKeepAlives(on bool) {
	for _, l := range n.listeners {
		if l.main {
			l.server.SetKeepAlivesEnabled(on)
		}
	}
}
