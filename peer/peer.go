package peer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/batonproxy/baton/lease"
)

// API paths.
const (
	pathHello    = "/peer/v1/hello"
	pathReleased = "/peer/v1/released"
	pathAcquired = "/peer/v1/acquired"
	pathPrepare  = "/peer/v1/handover/prepare"
	pathCommit   = "/peer/v1/handover/commit"
	pathPromise  = "/peer/v1/failsafe/promise"
	pathWithdraw = "/peer/v1/failsafe/withdraw"
)

// Defaults of Options.
const (
	DefaultTimeout       = 500 * time.Millisecond
	DefaultProbeInterval = 2 * time.Second
	maxBody              = 64 << 10
	handoverTTL          = 30 * time.Second
)

// Local is this node's side of the link, implemented by the node's wiring.
type Local interface {
	// Hello describes this node now.
	Hello() Hello
	// Nudge: a peer released the lease.
	Nudge()
	// NoteHolder: a peer acquired the lease.
	NoteHolder(rec lease.Record)
	// CanAdopt says whether this node may be the target of a handover now.
	CanAdopt() error
	// Adopt takes over the lease held under id (the second half of a
	// handover) and answers the new holder record once active.
	Adopt(ctx context.Context, id string) (lease.Record, error)
	// NewLeaseID returns a fresh, single-use lease ID to propose.
	NewLeaseID() string
	// Promise binds this node not to take the lease and not to serve for
	// window (its own clock) for the active node from; it fails when this
	// node cannot promise (it is active itself, or round was withdrawn).
	// round increases with each request of from.
	Promise(from string, round uint64, window time.Duration) error
	// Withdraw voids the promises given to from up to round.
	Withdraw(from string, round uint64)
}

// Hello is the answer to a hello: who a node is and what it does now.
type Hello struct {
	Node   string `json:"node"`
	Role   string `json:"role"`
	Active bool   `json:"active"` // its fence is on: it serves locally
	Term   uint64 `json:"term"`
}

// Options configures a Link.
type Options struct {
	// NodeName is this node's name, sent with every message.
	NodeName string
	// Secret is the shared secret. Required.
	Secret []byte
	// Peers are the other nodes' peer addresses (host:port).
	Peers []string
	// Timeout bounds every call. Zero means DefaultTimeout.
	Timeout time.Duration
	// ProbeInterval is the time between hellos to every peer. Zero means
	// DefaultProbeInterval.
	ProbeInterval time.Duration
	// OnPeer, if set, is called after every hello to a peer (for metrics).
	OnPeer func(PeerStatus)
	// Now is the wall clock for time stamps. Nil means time.Now.
	Now func() time.Time
}

// PeerStatus is what this node knows of one peer.
type PeerStatus struct {
	Address   string        `json:"address"`
	Node      string        `json:"node,omitempty"` // learned from its hello
	Reachable bool          `json:"reachable"`
	Role      string        `json:"role,omitempty"`
	Active    bool          `json:"active"`
	Term      uint64        `json:"term"`
	RTT       time.Duration `json:"-"`
	RTTMS     float64       `json:"last_rtt_ms"`
	LastSeen  time.Time     `json:"last_seen,omitzero"`
	LastError string        `json:"last_error,omitempty"`
}

// Link is this node's end of the peer link: the server for the peers'
// calls (Handler) and the client for ours.
type Link struct {
	opts   Options
	local  Local
	log    *zap.Logger
	sign   signer
	client *http.Client
	replay replayCache
	now    func() time.Time

	mu       sync.Mutex
	peers    map[string]*PeerStatus // by address
	rejected map[string]string      // remote host -> last rejection logged
	pending  *pendingHandover

	round atomic.Uint64 // the latest failsafe promise round asked for

	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

type pendingHandover struct {
	id      string
	from    string
	expires time.Time
}

// New checks o and returns a Link that is not yet probing (see Start).
func New(o Options, local Local, log *zap.Logger) (*Link, error) {
	switch {
	case log == nil:
		return nil, errors.New("new peer link: nil logger")
	case local == nil:
		return nil, errors.New("new peer link: nil local")
	case len(o.Secret) == 0:
		return nil, errors.New("new peer link: empty secret")
	case o.NodeName == "":
		return nil, errors.New("new peer link: empty node name")
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = DefaultProbeInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &Link{
		opts:  o,
		local: local,
		log:   log.Named("peer"),
		sign:  signer{key: o.Secret},
		now:   o.Now,
		client: &http.Client{
			Transport: &http.Transport{
				DialContext:         (&net.Dialer{Timeout: o.Timeout}).DialContext,
				MaxIdleConnsPerHost: 4,
				IdleConnTimeout:     time.Minute,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		peers:    map[string]*PeerStatus{},
		rejected: map[string]string{},
	}
	for _, a := range o.Peers {
		l.peers[a] = &PeerStatus{Address: a}
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	return l, nil
}

// Start probes every peer at once and then every ProbeInterval until
// Close.
func (l *Link) Start() {
	l.wg.Go(func() {
		t := time.NewTicker(l.opts.ProbeInterval)
		defer t.Stop()
		for {
			l.probeAll()
			select {
			case <-t.C:
			case <-l.ctx.Done():
				return
			}
		}
	})
}

// Close stops probing, waits for every call in flight and closes idle
// connections.
func (l *Link) Close() {
	l.cancel()
	l.wg.Wait()
	l.client.CloseIdleConnections()
}

// Peers returns what this node knows of each peer, sorted by address.
func (l *Link) Peers() []PeerStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]PeerStatus, 0, len(l.peers))
	for _, p := range l.peers {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}

func (l *Link) probeAll() {
	var wg sync.WaitGroup
	for _, a := range l.opts.Peers {
		wg.Go(func() { l.hello(l.ctx, a) })
	}
	wg.Wait()
}

// hello asks one peer and records the answer.
func (l *Link) hello(ctx context.Context, addr string) (Hello, error) {
	start := time.Now()
	var h Hello
	err := l.call(ctx, addr, pathHello, l.local.Hello(), &h)
	rtt := time.Since(start)
	l.mu.Lock()
	p := l.peers[addr]
	wasReachable, lastErr := p.Reachable, p.LastError
	if err == nil {
		p.Node, p.Reachable, p.Role, p.Active, p.Term = h.Node, true, h.Role, h.Active, h.Term
		p.RTT, p.RTTMS, p.LastSeen, p.LastError = rtt, float64(rtt.Microseconds())/1000, l.now(), ""
	} else if ctx.Err() == nil {
		p.Reachable, p.Active, p.LastError = false, false, err.Error()
	}
	st := *p
	l.mu.Unlock()
	switch {
	case err == nil && (!wasReachable || lastErr != ""):
		l.log.Info("peer reachable", zap.String("peer", addr), zap.String("peer_node", h.Node), zap.Duration("rtt", rtt))
	case err != nil && ctx.Err() == nil && (wasReachable || lastErr == "") && st.LastError != lastErr:
		l.log.Warn("peer unreachable", zap.String("peer", addr), zap.Error(err))
	}
	if l.opts.OnPeer != nil && ctx.Err() == nil {
		l.opts.OnPeer(st)
	}
	return h, err
}

// HolderAlive implements lease.Config.HolderAlive: the peer named by rec
// answers that it is active under rec's term.
func (l *Link) HolderAlive(ctx context.Context, rec lease.Record) bool {
	addr, ok := l.addrOf(rec.Holder)
	if !ok {
		return false
	}
	h, err := l.hello(ctx, addr)
	return err == nil && h.Node == rec.Holder && h.Active && h.Term == rec.Term
}

// addrOf finds the peer address of a node name learned from hellos.
func (l *Link) addrOf(node string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for a, p := range l.peers {
		if p.Node == node && node != "" {
			return a, true
		}
	}
	return "", false
}

// Released tells every peer, in the background, that this node gave the
// lease up under term.
func (l *Link) Released(term uint64) {
	l.broadcast(pathReleased, pushMsg{From: l.opts.NodeName, Term: term})
}

// Acquired tells every peer, in the background, this node's new holder
// record.
func (l *Link) Acquired(rec lease.Record) {
	l.broadcast(pathAcquired, pushMsg{From: l.opts.NodeName, Term: rec.Term, Record: &rec})
}

type pushMsg struct {
	From   string        `json:"from"`
	Term   uint64        `json:"term"`
	Record *lease.Record `json:"record,omitempty"`
	Round  uint64        `json:"round,omitempty"` // withdraw: the promise rounds it voids
}

func (l *Link) broadcast(path string, msg pushMsg) {
	if l.ctx.Err() != nil {
		return
	}
	for _, a := range l.opts.Peers {
		l.wg.Go(func() {
			if err := l.call(l.ctx, a, path, msg, nil); err != nil && l.ctx.Err() == nil {
				l.log.Debug("push not delivered", zap.String("peer", a), zap.String("what", path), zap.Error(err))
			}
		})
	}
}

// Secret returns the shared secret (for keys derived from it: DeriveKey).
func (l *Link) Secret() []byte { return l.sign.key }

// ErrUnknownPeer is returned by Handover for a name that is no peer.
var ErrUnknownPeer = errors.New("peer: no such peer")

type promiseMsg struct {
	From     string `json:"from"`
	WindowMS int64  `json:"window_ms"`
	Round    uint64 `json:"round"`
}

// nextRound numbers a promise request: increasing within this process and,
// as it starts from the wall clock in nanoseconds, across a restart too
// unless the clock went back (then a peer ignores this process's withdraws
// until its older promise lapses: a liveness cost, never a safety one).
func (l *Link) nextRound() uint64 {
	for {
		last := l.round.Load()
		next := max(last+1, uint64(l.now().UnixNano()))
		if l.round.CompareAndSwap(last, next) {
			return next
		}
	}
}

// Promise implements lease.Config.Failsafe: it asks every peer, in
// parallel, to promise to stand by for window, and reports whether every
// one did before ctx ended. With no peer it reports false: nobody can
// vouch that this node is alone.
func (l *Link) Promise(ctx context.Context, window time.Duration) bool {
	if len(l.opts.Peers) == 0 {
		return false
	}
	var ok atomic.Int64
	var wg sync.WaitGroup
	msg := promiseMsg{From: l.opts.NodeName, WindowMS: window.Milliseconds(), Round: l.nextRound()}
	for _, a := range l.opts.Peers {
		wg.Go(func() {
			err := l.call(ctx, a, pathPromise, msg, nil)
			if err == nil {
				ok.Add(1)
				return
			}
			l.log.Debug("no failsafe promise", zap.String("peer", a), zap.Error(err))
		})
	}
	wg.Wait()
	return int(ok.Load()) == len(l.opts.Peers) && ctx.Err() == nil
}

// Withdraw implements lease.Config.Withdraw: it tells every peer, in the
// background, that its promises to this node are void, up to the latest
// round asked for; a newer round's promise stands even if this withdraw
// reaches the peer after it.
func (l *Link) Withdraw() {
	l.broadcast(pathWithdraw, pushMsg{From: l.opts.NodeName, Round: l.round.Load()})
}

// Handover returns the lease.Handover for a step-down to the named node.
// An unknown name is an error that lists the known peers.
func (l *Link) Handover(ctx context.Context, node string) (lease.Handover, error) {
	if node == l.opts.NodeName {
		return nil, fmt.Errorf("%w: %q is this node", ErrUnknownPeer, node)
	}
	addr, ok := l.addrOf(node)
	if !ok {
		l.probeAllCtx(ctx) // names may not be known yet
		addr, ok = l.addrOf(node)
	}
	if !ok {
		return nil, fmt.Errorf("%w: %q (known: %s)", ErrUnknownPeer, node, l.known())
	}
	return &remoteHandover{l: l, addr: addr, node: node}, nil
}

func (l *Link) probeAllCtx(ctx context.Context) {
	var wg sync.WaitGroup
	for _, a := range l.opts.Peers {
		wg.Go(func() { l.hello(ctx, a) })
	}
	wg.Wait()
}

func (l *Link) known() string {
	var out []string
	for _, p := range l.Peers() {
		name := p.Node
		if name == "" {
			name = "?"
		}
		s := name + " at " + p.Address
		if !p.Reachable {
			s += " (unreachable)"
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return "none configured"
	}
	return strings.Join(out, ", ")
}

type remoteHandover struct {
	l    *Link
	addr string
	node string
}

type prepareMsg struct {
	From string `json:"from"`
	Term uint64 `json:"term"`
}

type prepareAnswer struct {
	LeaseID string `json:"lease_id"`
}

type commitMsg struct {
	From    string `json:"from"`
	LeaseID string `json:"lease_id"`
}

func (h *remoteHandover) Prepare(ctx context.Context) (string, error) {
	var a prepareAnswer
	if err := h.l.callT(ctx, h.addr, pathPrepare, prepareMsg{From: h.l.opts.NodeName}, &a, HandoverTimeout); err != nil {
		return "", fmt.Errorf("%s (%s): %w", h.node, h.addr, err)
	}
	if a.LeaseID == "" {
		return "", fmt.Errorf("%s (%s): empty lease id", h.node, h.addr)
	}
	return a.LeaseID, nil
}

func (h *remoteHandover) Commit(ctx context.Context, id string) (lease.Record, error) {
	var rec lease.Record
	if err := h.l.callT(ctx, h.addr, pathCommit, commitMsg{From: h.l.opts.NodeName, LeaseID: id}, &rec, HandoverTimeout); err != nil {
		return lease.Record{}, fmt.Errorf("%s (%s): %w", h.node, h.addr, err)
	}
	return rec, nil
}

// remoteError is a peer's explicit refusal (its answer's text).
type remoteError struct {
	status int
	msg    string
}

func (e *remoteError) Error() string { return fmt.Sprintf("refused (HTTP %d): %s", e.status, e.msg) }

// call POSTs in as JSON to the peer at addr and decodes the answer into
// out (nil: ignore it), checking both MACs.
func (l *Link) call(ctx context.Context, addr, path string, in, out any) error {
	return l.callT(ctx, addr, path, in, out, l.opts.Timeout)
}

// HandoverTimeout bounds each of the two calls of a handover: the commit
// waits for the target's storage calls.
const HandoverTimeout = 5 * time.Second

func (l *Link) callT(ctx context.Context, addr, path string, in, out any, timeout time.Duration) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hv, reqMAC := l.sign.header(http.MethodPost, path, l.now().UnixMilli(), body, "")
	req.Header.Set(AuthHeader, hv)
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return errors.New("peer rejected our authentication (different secret, or clocks more than a minute apart)")
	}
	if _, _, err := l.sign.verify(resp.Header.Get(AuthHeader), "ANSWER", path, rb, reqMAC); err != nil {
		return fmt.Errorf("answer not authenticated: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return &remoteError{status: resp.StatusCode, msg: strings.TrimSpace(string(rb))}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(rb, out)
}
