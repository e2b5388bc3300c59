package node

import (
	"context"
	"errors"
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

// drainState keeps the figures of the drains for /status.
type drainState struct {
	mu sync.Mutex
	st DrainStatus // Draining is the role owner's
}

// drainStatus is the drain part of /status.
func (n *Node) drainStatus() DrainStatus {
	n.drain.mu.Lock()
	st := n.drain.st
	n.drain.mu.Unlock()
	st.Draining = n.roles.role() == lease.RoleDraining
	st.Drains = n.roles.drainsBegun()
	return st
}

// followRole acts on the role's changes: it starts the drain the role
// owner began at a demotion, calls it off and turns keep-alives back on at
// a promotion, and runs the hooks. The fence is already off when the
// elector publishes a demotion, so no new request starts locally.
func (n *Node) followRole(ctx context.Context) {
	wasServing := false
	var started uint64 // the last drain started
	var wg sync.WaitGroup
	defer wg.Wait()
	cancelDrain := func() {}
	defer func() { cancelDrain() }()
	for {
		changed := n.roles.Changed()
		v := n.roles.view()
		now := serving(v.Role)
		switch {
		case now && !wasServing:
			cancelDrain()
			n.setKeepAlives(true)
			n.hooks.fire("active", v.Now)
		case !now && wasServing:
			n.hooks.fire("standby", v.Now)
		}
		if v.Drain != 0 && v.Drain != started {
			started = v.Drain
			cancelDrain()
			dctx, cancel := context.WithTimeout(ctx, n.live.Load().Drain.Timeout.D())
			cancelDrain = cancel
			drain, since := v.Drain, v.Now.At
			wg.Go(func() {
				n.drainClients(dctx, since, false)
				n.roles.drainEnded(drain)
			})
		}
		wasServing = now
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

// drainClients is the drain, the same after a demotion and at a stop
// (README: Drain on demotion, Stopping), from start (when the node stopped
// serving):
//  1. until start + drain.exit_delay clients keep their connections and
//     their new requests are forwarded: the load balancer may not have
//     seen the new active's probe yet;
//  2. keep-alives off: idle connections close, busy ones after their
//     current answer (Connection: close); at a stop the main servers shut
//     down too, so no new connection is accepted;
//  3. in-flight requests get until ctx's deadline (drain.timeout); after a
//     demotion upgraded connections too (the node stays up as a standby),
//     at a stop they are closed once the requests are done;
//  4. what is left is cut off, counted and logged.
//
// A demotion drain whose ctx is cancelled (the node is active again) stops
// where it is and leaves the connections alone.
func (n *Node) drainClients(ctx context.Context, start time.Time, stop bool) {
	live := n.live.Load()
	n.drain.mu.Lock()
	n.drain.st.LastStarted = start
	n.drain.mu.Unlock()
	hold := start.Add(live.Drain.ExitDelay.D())
	n.proxy.HoldClients(hold)
	if d := time.Until(hold); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		n.log.Info("drain called off: active again")
		return
	}
	n.setKeepAlives(false)
	if stop {
		var wg sync.WaitGroup
		for _, l := range n.listeners {
			if l.main {
				wg.Go(func() { l.server.Shutdown(ctx) })
			}
		}
		wg.Wait()
	}
	n.proxy.WaitIdle(ctx)
	if !stop && n.proxy.Upgraded() > 0 {
		// Upgraded connections have no end of their own: they are closed
		// at the drain deadline at the latest.
		<-ctx.Done()
	}
	var reqs int64
	var upgraded int
	deadline := errors.Is(ctx.Err(), context.DeadlineExceeded)
	if stop || deadline {
		reqs, upgraded = n.proxy.CutOff()
	}
	if !deadline { // a stop's closing of upgraded connections is no cut
		reqs, upgraded = 0, 0
	}
	n.metrics.drains.Inc()
	n.metrics.cutRequests.Add(float64(reqs))
	n.metrics.cutUpgraded.Add(float64(upgraded))
	took := time.Since(start)
	n.drain.mu.Lock()
	n.drain.st.LastTookMS = took.Milliseconds()
	n.drain.st.LastCutRequests, n.drain.st.LastCutUpgraded = reqs, upgraded
	n.drain.mu.Unlock()
	if reqs > 0 || upgraded > 0 {
		n.log.Warn("drain deadline passed, cut off what was left",
			zap.Int64("requests", reqs), zap.Int("upgraded_connections", upgraded),
			zap.Duration("drain_timeout", live.Drain.Timeout.D()), zap.Bool("stopping", stop))
		return
	}
	n.log.Info("drain finished", zap.Duration("took", took.Round(time.Millisecond)), zap.Bool("stopping", stop))
}

func (n *Node) setKeepAlives(on bool) {
	for _, l := range n.listeners {
		if l.main {
			l.server.SetKeepAlivesEnabled(on)
		}
	}
}
