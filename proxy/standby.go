package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// ForwardedHeader marks a request one baton node forwarded to another. A
// marked request reaching a node that may not serve it locally is answered
// 503, never forwarded again, so two nodes that each believe the other is
// active cannot bounce a request between them.
const ForwardedHeader = "Baton-Forwarded-By"

// Standby modes: what a node that may not serve locally does with a request.
const (
	StandbyForward = "forward" // proxy it to the active node
	StandbyReject  = "reject"  // answer 503 with Retry-After
)

// Leader tells a node that may not serve locally where the active node is.
type Leader interface {
	// ActiveURL is the advertise URL of the current lease holder when it is
	// another node and known, e.g. "http://10.0.0.5:80".
	ActiveURL() (string, bool)
	// Changed is closed at the next change of what ActiveURL or Fence
	// answer (a latest-value broadcast).
	Changed() <-chan struct{}
	// Seek says a request is waiting, up to window, for an active node to
	// forward to: the Leader should look for one more often than usual
	// meanwhile. It must return at once.
	Seek(window time.Duration)
}

// forwarder handles the requests this node may not serve locally: it
// finds the active node (waiting up to the hold time while none is known),
// forwards to it, or says there is none. It owns everything it needs (its
// own transport to the peers, the Leader, the mode) and never serves a
// request locally: when the node becomes active while a request waits,
// find says so and the dispatcher decides again.
type forwarder struct {
	reject   atomic.Bool  // mode reject (or no Leader)
	hold     atomic.Int64 // time.Duration
	leader   Leader
	nodeName string
	secret   []byte // signs the marker (Options.ForwardSecret)
	clients  *clientHold
	retry    string // Retry-After of a forward that found no node
	log      *zap.Logger
	tr       *http.Transport // to the active nodes, shared by every target

	last    atomic.Pointer[forwardTarget] // the target used last: no lock on the common path
	mu      sync.Mutex
	targets map[string]*forwardTarget // by advertise URL; nil value: unusable URL
}

// forwardTarget is one active node's advertise URL, parsed, with the
// reverse proxy that forwards to it (built once per URL, so a forwarded
// request needs no per-request context value to find its target).
type forwardTarget struct {
	raw string
	u   *url.URL
	rp  *httputil.ReverseProxy
}

func newForwarder(o Options, clients *clientHold, retryAfter string, log *zap.Logger) *forwarder {
	f := &forwarder{leader: o.Leader, nodeName: o.NodeName, secret: o.ForwardSecret, clients: clients, retry: retryAfter, log: log,
		targets: map[string]*forwardTarget{}}
	f.set(o.Standby, o.Hold)
	f.tr = &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: o.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true, // pass Accept-Encoding through untouched
	}
	return f
}

// newForwardTarget builds the reverse proxy to the active node at u.
func (f *forwarder) newForwardTarget(raw string, u *url.URL) *forwardTarget {
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			// The client as this node sees it (its own X-Forwarded-For
			// is dropped, as on the local path), vouched for by the
			// marker (see forwardmark.go).
			setXForwarded(pr)
			pr.Out.Host = pr.In.Host
			h := pr.Out.Header
			h[ForwardedHeader] = []string{signForward(f.secret, f.nodeName, time.Now(),
				h.Get("X-Forwarded-For"), h.Get("X-Forwarded-Proto"), h.Get("X-Forwarded-Host"))}
		},
		Transport:  f.tr,
		BufferPool: bufferPool{},
		ErrorLog:   stdLog(f.log, zap.DebugLevel),
		ModifyResponse: func(res *http.Response) error {
			if f.clients.closeClients() {
				res.Header.Set("Connection", "close")
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			f.forwardError(w, r, u.Host, err)
		},
	}
	return &forwardTarget{raw: raw, u: u, rp: rp}
}

// find returns where to forward r: the active node's target, or local ==
// true when this node became active itself while the request waited, or
// neither (answer 503). It waits up to the hold time for an active node.
// A request another node already forwarded (marked) is never forwarded
// again.
func (f *forwarder) find(r *http.Request, fence Fence, marked bool) (target *forwardTarget, local bool) {
	if f.reject.Load() || marked {
		return nil, false
	}
	return f.waitForActive(r.Context(), fence)
}

// forward passes the request to the active node.
func (f *forwarder) forward(ex *exchange, r *http.Request, target *forwardTarget) {
	ex.path = PathForwarded
	target.rp.ServeHTTP(ex, r)
}

// forwardError answers a request that could not be forwarded to the
// active node. The active may be moving, so the client is told to retry:
// a refused or reset connection is answered as by a node with no active
// to forward to (503, Retry-After).
func (f *forwarder) forwardError(w http.ResponseWriter, r *http.Request, target string, err error) {
	if code, client := clientFault(r.Context(), w); client {
		clientFailed(w, r, code)
		return
	}
	code := ErrorStatus(r.Context(), err)
	f.log.Debug("forward to the active node failed", zap.String("target", target), zap.Error(err))
	if ex := exchangeOf(w); ex != nil && code == http.StatusBadGateway {
		rejectAnswer(ex, f.retry)
		return
	}
	w.Header().Set("Connection", "close")
	w.WriteHeader(code)
	io.WriteString(w, http.StatusText(code)+"\n")
}

// waitForActive returns the active node's URL, or local=true if this node
// became active itself, waiting up to the hold time for either.
func (f *forwarder) waitForActive(ctx context.Context, fence Fence) (target *forwardTarget, local bool) {
	var timer *time.Timer
	for {
		changed := f.leader.Changed()
		if _, ok := fence.Fence(); ok {
			return nil, true
		}
		if u, ok := f.leader.ActiveURL(); ok {
			if t := f.target(u); t != nil {
				return t, false
			}
		}
		if timer == nil {
			hold := time.Duration(f.hold.Load())
			f.leader.Seek(hold) // also with no hold: the next requests want one
			if hold <= 0 {
				return nil, false
			}
			timer = time.NewTimer(hold)
			defer timer.Stop()
		}
		select {
		case <-changed:
		case <-timer.C:
			return nil, false
		case <-ctx.Done():
			return nil, false
		}
	}
}

// target returns the forward target for an advertise URL, or nil when the
// URL is unusable (logged once per URL).
func (f *forwarder) target(raw string) *forwardTarget {
	if t := f.last.Load(); t != nil && t.raw == raw {
		return t
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.targets[raw]
	if !ok {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			f.log.Warn("holder record has an unusable advertise URL", zap.String("advertise_url", raw))
		} else {
			t = f.newForwardTarget(raw, u)
		}
		if len(f.targets) > 64 {
			clear(f.targets)
		}
		f.targets[raw] = t
	}
	if t != nil {
		f.last.Store(t)
	}
	return t
}

// set changes the mode and the hold time; forwarding needs a Leader.
func (f *forwarder) set(mode string, hold time.Duration) {
	f.reject.Store(mode != StandbyForward || f.leader == nil)
	f.hold.Store(int64(hold))
}

func (f *forwarder) close() {
	f.tr.CloseIdleConnections()
}
