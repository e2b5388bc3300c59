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
}

// standby handles requests that this node may not serve locally.
type standby struct {
	p        *Proxy
	reject   atomic.Bool  // mode reject (or no Leader)
	hold     atomic.Int64 // time.Duration
	leader   Leader
	nodeName string
	rp       *httputil.ReverseProxy

	mu      sync.Mutex
	targets map[string]*url.URL // parsed advertise URLs

	forwarded atomic.Uint64
}

type forwardTarget struct{}

func newStandby(p *Proxy, o Options) *standby {
	s := &standby{p: p, leader: o.Leader, nodeName: o.NodeName, targets: map[string]*url.URL{}}
	s.set(o.Standby, o.Hold)
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: o.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
	}
	s.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			target := pr.In.Context().Value(forwardTarget{}).(*url.URL)
			pr.SetURL(target)
			// Keep the client's chain: the active node appends to it.
			pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
			pr.SetXForwarded()
			pr.Out.Host = pr.In.Host
			pr.Out.Header.Set(ForwardedHeader, s.nodeName)
		},
		Transport:  tr,
		BufferPool: bufferPool{},
		ErrorLog:   stdLog(p.log, zap.DebugLevel),
		ModifyResponse: func(res *http.Response) error {
			p.count(PathForwarded, res.StatusCode)
			res.Header.Set("Connection", "close")
			return nil
		},
		ErrorHandler: p.forwardError,
	}
	return s
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
		s.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), forwardTarget{}, target)))
	}
}

// waitForActive returns the active node's URL, or local=true if this node
// became active itself, waiting up to the hold time for either.
func (s *standby) waitForActive(ctx context.Context) (target *url.URL, local bool) {
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

func (s *standby) target(raw string) *url.URL {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.targets[raw]; ok {
		return u
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		s.p.log.Warn("holder record has an unusable advertise URL", zap.String("advertise_url", raw))
		u = nil
	}
	if len(s.targets) > 64 {
		clear(s.targets)
	}
	s.targets[raw] = u
	return u
}

// set changes the mode and the hold time; forwarding needs a Leader.
func (s *standby) set(mode string, hold time.Duration) {
	s.reject.Store(mode != StandbyForward || s.leader == nil)
	s.hold.Store(int64(hold))
}

func (s *standby) close() {
	s.rp.Transport.(*http.Transport).CloseIdleConnections()
}
