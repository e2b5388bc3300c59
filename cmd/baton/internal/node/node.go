// Package node wires baton's parts into one running node: the host
// instance lock and durable lease ID, the lease elector, the peer link, the
// health monitor, the proxy, the probe and the admin API, and runs the
// shutdown sequence (README: Stopping) on stop. Its one piece of state of
// its own is the node's role, which one type owns (roleOwner, role.go);
// beyond that it holds no policy but the order in which things start and
// stop.
package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/batonproxy/baton/config"
	"github.com/batonproxy/baton/healthcheck"
	"github.com/batonproxy/baton/internal/instance"
	"github.com/batonproxy/baton/lease"
	"github.com/batonproxy/baton/lease/history"
	"github.com/batonproxy/baton/peer"
	"github.com/batonproxy/baton/proxy"
)

// Node is one running baton.
type Node struct {
	cfg     *config.Config // as loaded at start: the restart-only settings
	log     *zap.Logger
	version string
	started time.Time
	level   zap.AtomicLevel // the logger's level, changed by reloads (if set)

	live     atomic.Pointer[config.Config] // the reloadable settings in force
	loadedAt atomic.Pointer[time.Time]

	lock     lease.Lock
	inst     *instance.Lock // this configuration's host instance lock; nil once closed
	link     *peer.Link     // nil without [peer]
	elector  *lease.Elector
	hist     *history.Recorder // writes this node's terms into the shared history; nil without one
	mon      atomic.Pointer[healthcheck.Monitor]
	monSwap  chan struct{} // signalled when a reload replaced the monitor
	proxy    *proxy.Proxy
	token    atomic.Pointer[string] // admin token; "" disables admin actions
	metrics  *metrics
	tls      *tlsSource // nil without listen.https
	hooks    hookRunner
	reloadMu sync.Mutex
	runCtx   context.Context // set by Run, for monitors started by reloads
	reloadOK atomic.Uint64
	reloadKO atomic.Uint64
	rtBase   runtimeValues // GC settings before Run changed them; guarded by reloadMu
	rtState  runtimeState  // GC settings in force; guarded by reloadMu

	listeners    []boundListener
	ready        chan struct{} // closed once serving and the first health round ran
	tcpProbeAddr string        // probe.mode "tcp": the bound probe address
	roles        *roleOwner    // the node's role: the one owner (role.go)
	drain        drainState
	maxConns     int // [limits] max_conns and max_backend_conns in force (effectiveLimits)
	maxBackend   int
	sched        *schedNode // [azure] scheduled_events; nil when off

	lastDrill atomic.Pointer[DrillResult] // the last `baton drill` result posted (drill.go)
}

type boundListener struct {
	key    string // config key, for messages
	ln     net.Listener
	server *http.Server
	main   bool               // carries application traffic (drained last)
	lim    *proxy.ConnLimiter // main listeners: [limits] max_conns
}

// New builds a node from a validated configuration and binds its listeners,
// so that a port in use is reported before anything starts. Close releases
// the listeners if Run is never called.
func New(cfg *config.Config, log *zap.Logger, version string) (*Node, error) {
	n, err := build(cfg, log, version)
	if err != nil {
		if n != nil {
			n.Close()
		}
		return nil, err
	}
	return n, nil
}

// clockJump maps lease.clock_jump to lease.Config.ClockJump: "0s" turns
// the detector off.
func clockJump(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// build is New without the clean-up: on error it may return a partly
// built node for Close.
func build(cfg *config.Config, log *zap.Logger, version string) (*Node, error) {
	log = log.With(zap.String("node", cfg.NodeName)) // on every line of this node
	n := &Node{cfg: cfg, log: log, version: version, started: time.Now(), ready: make(chan struct{}),
		monSwap: make(chan struct{}, 1)}
	n.live.Store(cfg)
	now := time.Now()
	n.loadedAt.Store(&now)
	n.hooks = hookRunner{n: n, log: log.Named("hooks")}
	n.metrics = newMetrics(n)
	n.roles = newRoleOwner(log)
	var err error
	if n.lock, err = newLock(cfg, log); err != nil {
		return n, err
	}
	ec := lease.Config{
		NodeName:         cfg.NodeName,
		AdvertiseURL:     cfg.Drain.AdvertiseURL,
		Duration:         cfg.Lease.Duration.D(),
		RenewInterval:    cfg.Lease.RenewInterval.D(),
		RenewDeadline:    cfg.Lease.RenewDeadline.D(),
		RetryInterval:    cfg.Lease.RetryInterval.D(),
		CandidacyBackoff: cfg.Lease.CandidacyBackoff.D(),
		ClockJump:        clockJump(cfg.Lease.ClockJump.D()),
		OnEvent:          n.onLeaseEvent,
		OnState:          n.roles.elected,
	}
	if n.inst, err = takeInstance(cfg, n.lock, &ec); err != nil {
		return n, err
	}
	n.hist = newRecorder(cfg, ec.Inherited, log)
	if n.link, err = newLink(cfg, n, log); err != nil {
		return n, err
	}
	if n.link != nil {
		ec.HolderAlive = n.link.HolderAlive
		if cfg.Lease.Failsafe {
			ec.Failsafe, ec.Withdraw = n.link.Promise, n.link.Withdraw
		}
	}
	if ec.Inherited {
		log.Info("found this node's lease id from an earlier process: taking its lease over if it is still held",
			zap.String("state_dir", cfg.Lease.StateDir))
	}
	n.elector, err = lease.NewElector(n.lock, ec, log)
	if err != nil {
		return n, err
	}
	n.roles.elected(n.elector.State()) // the role before the elector publishes anything
	mon, err := newMonitor(cfg, n.metrics, false, log)
	if err != nil {
		return n, err
	}
	n.mon.Store(mon)
	backend, err := url.Parse(cfg.Backend.URL)
	if err != nil {
		return n, fmt.Errorf("backend.url: %w", err)
	}
	mains := 0
	for _, a := range []string{cfg.Listen.HTTP, cfg.Listen.HTTPS} {
		if a != "" {
			mains++
		}
	}
	n.maxConns, n.maxBackend = effectiveLimits(cfg.Limits, mains, openFilesLimit(), log)
	var markerKey []byte
	if n.link != nil {
		markerKey = peer.DeriveKey(n.link.Secret(), "forwarding marker")
	}
	n.proxy, err = proxy.New(proxy.Options{
		Backend:               backend,
		FencingHeader:         cfg.Backend.FencingHeader,
		IdentifyHeader:        cfg.Backend.IdentifyHeader,
		Fence:                 n.elector,
		Observer:              liveObserver{n},
		RetryAfter:            cfg.Lease.RetryInterval.D() + cfg.Probe.LBInterval.D(),
		DialTimeout:           cfg.Backend.DialTimeout.D(),
		ResponseHeaderTimeout: headerTimeout(cfg.Backend.ResponseHeaderTimeout.D()),
		MaxIdleConns:          cfg.Backend.MaxIdleConns,
		NoFastPath:            cfg.Backend.FastPath != nil && !*cfg.Backend.FastPath,
		Standby:               cfg.Drain.Standby,
		Hold:                  cfg.Drain.Hold.D(),
		Leader:                leader{n.elector, cfg.NodeName},
		NodeName:              cfg.NodeName,
		ForwardSecret:         markerKey,
		MaxBackendConns:       n.maxBackend,
		BackendQueueTimeout:   cfg.Limits.BackendQueueTimeout.D(),
		ClientTimeout:         cfg.Limits.ClientTimeout.D(),
		BufferBody:            cfg.Limits.BufferBody,
		UpgradeProtocols:      cfg.Backend.UpgradeProtocols,
		OnDuration:            n.metrics.onDuration,
	}, log)
	if err != nil {
		return n, err
	}
	if cfg.Listen.HTTPS != "" {
		if n.tls, err = newTLS(cfg, log); err != nil {
			return n, err
		}
	}
	tok, err := readToken(cfg)
	if err != nil {
		return n, err
	}
	n.token.Store(&tok)
	if cfg.Log.Access {
		n.proxy.SetAccessLog(log.Named("access"))
	}
	if n.sched, err = newSched(cfg, log); err != nil {
		return n, err
	}
	if err := n.bind(); err != nil {
		return n, err
	}
	return n, nil
}

func (n *Node) bind() error {
	allow, err := parseAllow(n.cfg.Probe.Allow)
	if err != nil {
		return err
	}
	probe := proxy.NewProbe(n.cfg.Probe.Path, allow, n.probeState, n.log)
	type want struct {
		key, addr string
		h         http.Handler
		main      bool
	}
	wants := []want{{"admin.listen", n.cfg.Admin.Listen, n.adminHandler(), false}}
	if n.link != nil {
		wants = append(wants, want{"peer.listen", n.cfg.Peer.Listen, n.link.Handler(), false})
	}
	if n.cfg.Probe.Mode == "tcp" {
		// Checked now so a port in use is reported at start; the TCP probe
		// listener is open only while the node is up (see tcpProbe).
		ln, err := net.Listen("tcp", n.cfg.Probe.Listen)
		if err != nil {
			return fmt.Errorf("probe.listen: cannot listen on %s: %w", n.cfg.Probe.Listen, err)
		}
		n.tcpProbeAddr = ln.Addr().String()
		ln.Close()
	} else {
		wants = append([]want{{"probe.listen", n.cfg.Probe.Listen, probe, false}}, wants...)
	}
	if n.cfg.Listen.HTTP != "" {
		var h http.Handler = n.proxy
		if n.tls != nil {
			if n.cfg.TLS.Redirect() {
				_, port, _ := net.SplitHostPort(n.cfg.Listen.HTTPS)
				h = proxy.RedirectHTTPS(port)
			}
			h = n.tls.challenges(h)
		}
		wants = append(wants, want{"listen.http", n.cfg.Listen.HTTP, h, true})
	}
	if n.tls != nil {
		wants = append(wants, want{"listen.https", n.cfg.Listen.HTTPS, proxy.HSTS(n.proxy, n.cfg.TLS.HSTS.D()), true})
	}
	for _, w := range wants {
		if w.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", w.addr)
		if err != nil {
			return fmt.Errorf("%s: cannot listen on %s: %w", w.key, w.addr, err)
		}
		log := n.log.Named(strings.TrimSuffix(w.key, ".listen"))
		srv := proxy.NewServer(w.h, log)
		if w.key == "listen.https" {
			srv.TLSConfig = n.tls.config(n.cfg.TLS.MinVersion)
		}
		var lim *proxy.ConnLimiter
		if w.main {
			lim = proxy.NewConnLimiter(n.maxConns, log)
			ln = lim.Listener(ln)
			srv.ConnState = lim.ConnState
			proxy.ServerLimits{MaxStreams: n.cfg.Limits.HTTP2MaxStreams, ClientTimeout: n.cfg.Limits.ClientTimeout.D()}.Apply(srv)
		}
		n.listeners = append(n.listeners, boundListener{key: w.key, ln: ln, main: w.main, server: srv, lim: lim})
	}
	return nil
}

// Addr returns the bound address of the listener configured under key
// ("listen.http", "probe.listen", "admin.listen"), or "" if there is none.
func (n *Node) Addr(key string) string {
	if key == "probe.listen" && n.tcpProbeAddr != "" {
		return n.tcpProbeAddr
	}
	for _, l := range n.listeners {
		if l.key == key {
			return l.ln.Addr().String()
		}
	}
	return ""
}

// Ready is closed once the node serves on every listener and the first
// round of health checks ran (for service managers' readiness).
func (n *Node) Ready() <-chan struct{} { return n.ready }

// Close releases the listeners and the instance lock of a node that was
// never run.
func (n *Node) Close() {
	for _, l := range n.listeners {
		l.ln.Close()
	}
	if n.proxy != nil {
		n.proxy.Close()
	}
	n.hist.Close(0)
	n.closeInstance()
}

// closeInstance stops the peer link and releases the instance lock, last
// of all: another process of this configuration may start from here on.
func (n *Node) closeInstance() {
	if n.link != nil {
		n.link.Close()
	}
	if n.inst != nil {
		n.inst.Close()
		n.inst = nil
	}
}

// Run serves until ctx is cancelled, then stops in the order the README's
// "Stopping" describes: probe 503 at once, lease released, listeners kept open for the
// exit delay while in-flight requests finish, then the servers shut down
// within drain.timeout. It returns an error only for a runtime failure.
func (n *Node) Run(ctx context.Context) error {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	n.reloadMu.Lock()
	n.runCtx = runCtx
	n.startRuntime()
	n.reloadMu.Unlock()

	n.monitor().Start(runCtx)
	n.hist.Start()
	n.elector.Start(runCtx)
	if n.link != nil {
		n.link.Start()
	}
	if n.tls != nil {
		if err := n.tls.start(runCtx); err != nil {
			n.log.Error("certificate management failed to start", zap.Error(err))
		}
		defer n.tls.stop()
	}

	var wg sync.WaitGroup
	wg.Go(func() { n.followHealth(runCtx) })
	wg.Go(func() { n.followRole(runCtx) })
	wg.Go(func() { n.runSched(runCtx) })
	if n.tcpProbeAddr != "" {
		wg.Go(func() { n.tcpProbe(runCtx) })
	}

	serveErr := make(chan error, len(n.listeners))
	for _, l := range n.listeners {
		wg.Go(func() {
			serve := l.server.Serve
			if l.key == "listen.http" {
				serve = servePlain(l.server)
			}
			if l.server.TLSConfig != nil {
				serve = func(ln net.Listener) error { return l.server.ServeTLS(ln, "", "") }
			}
			if err := serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("%s %s: %w", l.key, l.ln.Addr(), err)
			}
		})
	}
	wg.Go(func() {
		select {
		case <-n.monitor().FirstRoundDone():
			close(n.ready)
		case <-runCtx.Done():
		}
	})
	n.log.Info("node started",
		zap.String("version", n.version),
		zap.String("lease_backend", n.cfg.Lease.Backend),
		zap.String("backend", n.cfg.Backend.URL),
		zap.Strings("listen", n.addrs()))

	var runErr error
	why := "stopping"
	select {
	case <-ctx.Done():
		n.log.Info("stopping", zap.String("reason", stopReason(ctx)))
		why = "stopping: " + stopReason(ctx)
	case runErr = <-serveErr:
		n.log.Error("listener failed, stopping", zap.Error(runErr))
		why = "stopping: a listener failed"
	}
	n.shutdown(why)
	cancel()
	wg.Wait()
	return runErr
}

// stopReason is why ctx ended, as its owner said with a cause ("terminated
// signal received" from os/signal, "service stop" from the Windows service
// host), or "signal" when it gave none.
func stopReason(ctx context.Context) string {
	// Not errors.Is: os/signal's causes say they are context.Canceled.
	if c := context.Cause(ctx); c != nil && c != context.Canceled {
		return c.Error()
	}
	return "signal"
}

// shutdown is the stop sequence. Every step has its own fresh, bounded
// context: the run context is already cancelled here.
func (n *Node) shutdown(why string) {
	stopAt := time.Now()
	n.reloadMu.Lock()
	n.runCtx = nil // no reload from here on
	n.reloadMu.Unlock()
	n.roles.stop(why) // 1. the probe answers 503 from now on
	// 2. fence off (no new local request), release the lease; keep reading
	// the holder so new requests are forwarded to the new active node. The
	// clients' connections are held from before the fence goes off.
	live := n.live.Load()
	n.proxy.HoldClients(stopAt.Add(live.Drain.ExitDelay.D()))
	n.elector.Leave("stopping")
	n.log.Info("lease released; keeping listeners open for the load balancer",
		zap.Duration("exit_delay", live.Drain.ExitDelay.D()))

	// 3.-4. the drain, as after a demotion, with the main servers shut down.
	drainCtx, cancel := context.WithTimeout(context.Background(), live.Drain.Timeout.D())
	n.drainClients(drainCtx, stopAt, true)
	cancel()
	for _, l := range n.listeners {
		if l.main {
			l.server.Close()
		}
	}
	n.proxy.Close()
	n.elector.Stop()
	n.hist.Close(historyFlush) // the end of the term, if it is not written yet

	// 5. the probe and admin listeners last, so the load balancer and the
	// operator can watch the whole sequence.
	for _, l := range n.listeners {
		if l.main {
			continue
		}
		sctx, c := context.WithTimeout(context.Background(), time.Second)
		if err := l.server.Shutdown(sctx); err != nil {
			l.server.Close()
		}
		c()
	}
	n.monitor().Stop()
	n.hooks.wait()
	n.closeInstance()
	n.log.Info("stopped", zap.Duration("took", time.Since(stopAt).Round(time.Millisecond)))
}

// followHealth passes every change of the backend's health to the elector,
// following the monitor a reload put in place.
func (n *Node) followHealth(ctx context.Context) {
	for {
		m := n.monitor()
		changed := m.Changed()
		ok, reason := m.Healthy()
		n.elector.SetHealthy(ok, reason)
		select {
		case <-changed:
		case <-n.monSwap:
		case <-ctx.Done():
			return
		}
	}
}

// monitor is the health monitor in force.
func (n *Node) monitor() *healthcheck.Monitor { return n.mon.Load() }

// liveObserver passes the proxy's passive signals to the monitor in force.
// It is a proxy.PathObserver, so the monitor's path rules see each
// request's path.
type liveObserver struct{ n *Node }

var _ proxy.PathObserver = liveObserver{}

func (o liveObserver) RequestStarted() { o.n.mon.Load().RequestStarted() }
func (o liveObserver) RequestDone(status int, proxyErr bool) {
	o.n.mon.Load().RequestDone(status, proxyErr)
}
func (o liveObserver) RequestDonePath(path string, status int, proxyErr bool) {
	o.n.mon.Load().RequestDonePath(path, status, proxyErr)
}

// SetLevel gives the node the logger's level, so reloads can change it.
func (n *Node) SetLevel(l zap.AtomicLevel) { n.level = l }

func readToken(cfg *config.Config) (string, error) {
	if cfg.Admin.TokenFile == "" {
		return "", nil
	}
	tok, err := config.ReadSecret("", cfg.Admin.TokenFile)
	if err != nil {
		return "", fmt.Errorf("admin.token_file: %w", err)
	}
	return tok, nil
}

// probeState is what the load balancer sees: up only while the role
// owner says active (or failsafe), the lease is valid by this node's own
// clock (the fence, read now) and the backend is healthy.
func (n *Node) probeState() (bool, string) {
	r := n.roles.role()
	if !serving(r) {
		return false, r.String()
	}
	_, active := n.elector.Fence()
	if healthy, _ := n.monitor().Healthy(); active && healthy {
		return true, r.String()
	}
	return false, r.String() // the fence went off before the elector published it
}

func (n *Node) addrs() []string {
	var out []string
	for _, l := range n.listeners {
		out = append(out, l.key+"="+l.ln.Addr().String())
	}
	return out
}

func parseAllow(cidrs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range cidrs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("probe.allow: %q is not a CIDR or an IP address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// headerTimeout maps backend.response_header_timeout ("0s": no limit) to
// proxy.Options (0: the default, negative: no limit).
func headerTimeout(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
