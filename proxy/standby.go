package proxy

import (
	"context"
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

// standby handles requests that this node may not serve locally.
type standby struct {
	p        *Proxy
	reject   atomic.Bool  // mode reject (or no Leader)
	hold     atomic.Int64 // time.Duration
	leader   Leader
	nodeName string
	tr       *http.Transport // to the active nodes, shared by every target

	last    atomic.Pointer[forwardTarget] // the target used last: no lock on the common path
	mu      sync.Mutex
	targets map[string]*forwardTarget // by advertise URL; nil value: unusable URL

	forwarded atomic.Uint64
}

// forwardTarget is one active node's advertise URL, parsed, with the
// reverse proxy that forwards to it (built once per URL, so a forwarded
// request needs no per-request context value to find its target).
type forwardTarget struct {
	raw string
	u   *url.URL
	rp  *httputil.ReverseProxy
}

func newStandby(p *Proxy, o Options) *standby {
	s := &standby{p: p, leader: o.Leader, nodeName: o.NodeName, targets: map[string]*forwardTarget{}}
	s.set(o.Standby, o.Hold)
	s.tr = &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: o.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true, // pass Accept-Encoding through untouched
	}
	return s
}

// newForwardTarget builds the reverse proxy to the active node at u.
func (s *standby) newForwardTarget(raw string, u *url.URL) *forwardTarget {
	p := s.p
	marker := []string{s.nodeName}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			// Keep the client's chain: the active node appends to it.
			pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
			setXForwarded(pr)
			pr.Out.Host = pr.In.Host
			pr.Out.Header[ForwardedHeader] = marker[:1:1] // shared, never written to
		},
		Transport:  s.tr,
		BufferPool: bufferPool{},
		ErrorLog:   stdLog(p.log, zap.DebugLevel),
		ModifyResponse: func(res *http.Response) error {
			p.count(PathForwarded, res.StatusCode)
			if p.closeClients() {
				res.Header.Set("Connection", "close")
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.forwardError(w, r, u.Host, err)
		},
	}
	return &forwardTarget{raw: raw, u: u, rp: rp}
}

// serve answers a request this node may not serve locally: forward it to
// the active node, hold it briefly while no active is known, or 503.
func (s *standby) serve(w http.ResponseWriter, r *http.Request) {
	if s.reject.Load() || r.Header.Get(ForwardedHeader) != "" {
		s.p.notServing(w)
		return
	}
	target, local := s.waitForActive(r.Context())
	switch {
	case local:
		s.p.serveLocal(w, r)
	case target == nil:
		s.p.notServing(w)
	default:
		s.forwarded.Add(1)
		if aw, ok := w.(*accessWriter); ok {
			aw.path = PathForwarded
		}
		if s.p.opts.OnDuration != nil {
			defer s.p.observe(PathForwarded, time.Now())
		}
		target.rp.ServeHTTP(w, r)
	}
}

// waitForActive returns the active node's URL, or local=true if this node
// became active itself, waiting up to the hold time for either.
func (s *standby) waitForActive(ctx context.Context) (target *forwardTarget, local bool) {
	var timer *time.Timer
	for {
		changed := s.leader.Changed()
		if _, ok := s.p.opts.Fence.Fence(); ok {
			return nil, true
		}
		if u, ok := s.leader.ActiveURL(); ok {
			if t := s.target(u); t != nil {
				return t, false
			}
		}
		if timer == nil {
			hold := time.Duration(s.hold.Load())
			s.leader.Seek(hold) // also with no hold: the next requests want one
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
func (s *standby) target(raw string) *forwardTarget {
	if t := s.last.Load(); t != nil && t.raw == raw {
		return t
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.targets[raw]
	if !ok {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			s.p.log.Warn("holder record has an unusable advertise URL", zap.String("advertise_url", raw))
		} else {
			t = s.newForwardTarget(raw, u)
		}
		if len(s.targets) > 64 {
			clear(s.targets)
		}
		s.targets[raw] = t
	}
	if t != nil {
		s.last.Store(t)
	}
	return t
}

// set changes the mode and the hold time; forwarding needs a Leader.
func (s *standby) set(mode string, hold time.Duration) {
	s.reject.Store(mode != StandbyForward || s.leader == nil)
	s.hold.Store(int64(hold))
}

func (s *standby) close() {
	s.tr.CloseIdleConnections()
}
