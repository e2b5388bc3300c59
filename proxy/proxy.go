package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Fence answers whether this node may serve a request locally right now, and
// under which fencing term. It is called once per request and must be cheap.
type Fence interface {
	Fence() (term uint64, ok bool)
}

// Observer receives the passive health signals of live traffic. Both calls
// are made on the request path and must be cheap and non-blocking.
// RequestDone is called exactly once for every RequestStarted, when the
// backend's response headers arrived or the request failed.
type Observer interface {
	RequestStarted()
	RequestDone(status int, proxyErr bool)
}

// PathObserver is an Observer that also learns the URL path of each
// request (decoded, as the client sent it: the inbound r.URL.Path), for
// signals kept per path. When Options.Observer implements it, the proxy
// calls RequestDonePath instead of RequestDone.
type PathObserver interface {
	Observer
	RequestDonePath(path string, status int, proxyErr bool)
}

// StatusClientClosedRequest is the non-standard status recorded (never sent)
// when the client cancels a request before the backend answered.
const StatusClientClosedRequest = 499

// Options configures a Proxy.
type Options struct {
	// Backend is the local application, e.g. http://127.0.0.1:8080.
	Backend *url.URL
	// FencingHeader carries the lease term to the backend; "" disables it.
	FencingHeader string
	// IdentifyHeader names this node and the term, "node-a; term=7"
	// (IdentifyValue), on every answer served by the local backend; ""
	// (the default) disables it. See identify.go.
	IdentifyHeader string
	// Fence decides per request whether the node serves locally.
	Fence Fence
	// Observer, if not nil, receives passive health signals.
	Observer Observer
	// RetryAfter is the Retry-After hint sent with 503 answers (whole
	// seconds, at least 1).
	RetryAfter time.Duration
	// DialTimeout bounds connecting to the backend; default 2s.
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the backend's response
	// headers; 0: 60s, negative: no limit. A timeout answers 504.
	ResponseHeaderTimeout time.Duration
	// MaxIdleConns sizes the idle pool to the backend; default 256.
	MaxIdleConns int
	// NoFastPath sends every request through httputil.ReverseProxy and
	// http.Transport (see fastpath.go for what the fast path takes).
	NoFastPath bool

	// Standby is what a node that may not serve locally does with a
	// request: StandbyForward (to Leader's ActiveURL) or StandbyReject.
	// Forwarding needs a Leader; without one the node rejects.
	Standby string
	// Hold is how long a request waits for an active node to become known
	// before it is answered 503.
	Hold time.Duration
	// Leader locates the active node for forwarding.
	Leader Leader
	// NodeName marks forwarded requests (ForwardedHeader).
	NodeName string
	// MaxBackendConns bounds the requests at the backend (or, forwarded,
	// at the active node) at once; 0: no limit. See limits.go.
	MaxBackendConns int
	// BackendQueueTimeout is how long a request waits for a backend slot
	// before it is answered 503; 0: not at all.
	BackendQueueTimeout time.Duration
	// ClientTimeout bounds a slow client (see limits.go): a read of the
	// request body, or a write of the answer, that makes no progress for
	// this long fails. 0: no limit.
	ClientTimeout time.Duration
	// BufferBody is the largest request body read in full before the
	// request takes a backend slot; 0: every body is streamed.
	BufferBody int
	// UpgradeProtocols are the protocols a client may upgrade a
	// connection to (Upgrade header, case-insensitive); an Upgrade to any
	// other is removed and the request goes on as a plain one. nil:
	// DefaultUpgradeProtocols; empty: none.
	UpgradeProtocols []string
	// ForwardSecret authenticates the marker of forwarded requests (the
	// peer link's secret; see forwardmark.go): with it, the node that
	// serves a forwarded request passes the client's address and scheme
	// as the forwarding node saw them. nil: forwarded requests carry the
	// forwarding node's address and the hop's scheme.
	ForwardSecret []byte
	// OnDuration, if set, is called at the end of every local or
	// forwarded request with its duration (for a histogram). It must be
	// cheap and must not block.
	OnDuration func(path Path, d time.Duration)
}

// Proxy is the http.Handler of the main listeners.
type Proxy struct {
	opts       Options
	log        *zap.Logger
	rp         *httputil.ReverseProxy
	transport  *http.Transport
	fenceKey   string
	retryAfter string
	upgrades   []string     // Options.UpgradeProtocols, defaulted
	gate       *gate        // Options.MaxBackendConns; nil: no limit
	pathObs    PathObserver // Options.Observer, when it is one
	basePath   string       // backend.url's path without its trailing slash

	inFlight    atomic.Int64
	idleWaiters atomic.Int32  // WaitIdle calls running
	idleMu      sync.Mutex    // guards idle
	idle        chan struct{} // nil unless WaitIdle waits; closed when inFlight drops to 0
	termCache   atomic.Pointer[termValue]
	identKey    string                     // Options.IdentifyHeader, canonical; "": off
	identCache  atomic.Pointer[identValue] // see identify.go

	backendFailing atomic.Bool // for logging once per change
	fwd            *forwarder
	fast           *fastPool                  // nil: every request takes httputil.ReverseProxy
	bodyBufs       sync.Pool                  // *[]byte of Options.BufferBody bytes, for bodies the fast path sends
	codes          [numPaths][6]atomic.Uint64 // by path and status class (index 1..5; 0: other)
	accessLog      atomic.Pointer[zap.Logger]
	hold           clientHold // see HoldClients
	conns          connSet    // backend connections, closed at a drain deadline
	upgraded       connSet    // hijacked client connections (WebSocket)

	served    atomic.Uint64
	forwarded atomic.Uint64
	rejected  atomic.Uint64
	busy      atomic.Uint64
}

// New builds a Proxy. It does not start anything.
func New(o Options, log *zap.Logger) (*Proxy, error) {
	if o.Backend == nil || o.Backend.Host == "" || (o.Backend.Scheme != "http" && o.Backend.Scheme != "https") {
		return nil, fmt.Errorf("proxy: backend must be an absolute http or https URL, got %q", o.Backend)
	}
	if o.Fence == nil {
		return nil, errors.New("proxy: a Fence is required")
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 2 * time.Second
	}
	if o.ResponseHeaderTimeout == 0 {
		o.ResponseHeaderTimeout = 60 * time.Second
	}
	if o.MaxIdleConns <= 0 {
		o.MaxIdleConns = 256
	}
	ra := int(o.RetryAfter.Round(time.Second) / time.Second)
	if ra < 1 {
		ra = 1
	}
	p := &Proxy{
		opts:       o,
		log:        log.Named("proxy"),
		fenceKey:   http.CanonicalHeaderKey(o.FencingHeader),
		identKey:   http.CanonicalHeaderKey(o.IdentifyHeader),
		retryAfter: strconv.Itoa(ra),
		upgrades:   o.UpgradeProtocols,
	}
	if p.upgrades == nil {
		p.upgrades = DefaultUpgradeProtocols
	}
	p.pathObs, _ = o.Observer.(PathObserver)
	p.basePath = strings.TrimSuffix(o.Backend.Path, "/")
	p.gate = newGate(o.MaxBackendConns, o.BackendQueueTimeout, p.log)
	p.transport = &http.Transport{
		Proxy: nil, // never route the local backend through an environment proxy
		DialContext: p.conns.track((&net.Dialer{
			Timeout:   o.DialTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext),
		MaxIdleConns:          o.MaxIdleConns,
		MaxIdleConnsPerHost:   o.MaxIdleConns, // one backend: the whole pool is its
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: max(o.ResponseHeaderTimeout, 0), // 0: no limit
		ExpectContinueTimeout: time.Second,
		TLSHandshakeTimeout:   o.DialTimeout,
		// Pass the client's Accept-Encoding through as it is: without
		// this the Transport asks the backend for gzip on its own and
		// decompresses the answer here, spending CPU for nothing.
		DisableCompression: true,
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      p.transport,
		BufferPool:     bufferPool{},
		ErrorLog:       stdLog(p.log, zap.DebugLevel), // per-request copy errors
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
	}
	if !o.NoFastPath && o.Backend.Scheme == "http" && (o.Backend.Path == "" || o.Backend.Path == "/") && o.Backend.RawQuery == "" {
		p.fast = &fastPool{addr: canonicalAddr(o.Backend), dial: p.transport.DialContext,
			max: o.MaxIdleConns, idleTimeout: p.transport.IdleConnTimeout}
	}
	p.fwd = newForwarder(o, &p.hold, p.retryAfter, p.log)
	return p, nil
}

// rewrite makes the request to the local backend: its URL, the
// X-Forwarded-* headers, the Host the client asked for. The fencing header
// was set on the inbound request by serveLocal and is copied with the
// other headers.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(p.opts.Backend)
	if _, ok := pr.In.Header[ForwardedHeader]; ok {
		// Forwarded by a peer whose marker verified (screenForwarded):
		// the app sees the client as that node saw it.
		keepVouched(pr.Out.Header, pr.In.Header)
	} else {
		setXForwarded(pr)
	}
	pr.Out.Host = pr.In.Host // the app sees the name the client asked for
	if p.fenceKey != "" {
		// Again after the hop-by-hop removal: a client listing it in
		// Connection must not keep it from the backend.
		pr.Out.Header[p.fenceKey] = pr.In.Header[p.fenceKey]
	}
}

// keepVouched copies the X-Forwarded-* a verified marker vouches for from
// in to out, and removes the marker (it is between peers only).
func keepVouched(out, in http.Header) {
	for _, k := range [...]string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"} {
		if v, ok := in[k]; ok {
			out[k] = v
		}
	}
	delete(out, ForwardedHeader)
}

// setXForwarded does exactly what httputil.ProxyRequest.SetXForwarded does
// (X-Forwarded-For appended to the chain already in Out, or removed when
// the client address does not parse; X-Forwarded-Host; X-Forwarded-Proto),
// with the three values in one allocation instead of three. The value
// slices have no spare capacity, so an append elsewhere copies them.
func setXForwarded(pr *httputil.ProxyRequest) {
	h := pr.Out.Header
	v := new([3]string)
	if clientIP, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
		if prior := h["X-Forwarded-For"]; len(prior) > 0 {
			clientIP = strings.Join(prior, ", ") + ", " + clientIP
		}
		v[0] = clientIP
		h["X-Forwarded-For"] = v[0:1:1]
	} else {
		delete(h, "X-Forwarded-For")
	}
	v[1] = pr.In.Host
	h["X-Forwarded-Host"] = v[1:2:2]
	v[2] = "http"
	if pr.In.TLS != nil {
		v[2] = "https"
	}
	h["X-Forwarded-Proto"] = v[2:3:3]
}

// termValue is the fencing header's value for one term, built once per term
// instead of once per request. Its slice is shared by the requests of that
// term and never written to: the inbound header map only holds it until
// httputil.ReverseProxy copies the headers for the backend request.
type termValue struct {
	term uint64
	v    []string
}

func (p *Proxy) termHeader(term uint64) []string {
	if tv := p.termCache.Load(); tv != nil && tv.term == term {
		return tv.v
	}
	tv := &termValue{term: term, v: []string{strconv.FormatUint(term, 10)}}
	p.termCache.Store(tv)
	return tv.v
}

// ServeHTTP decides once what a request does (serve it locally, forward it
// to the active node, hold it until one is known, or answer 503), takes
// that path, and records the outcome once (record).
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ex := newExchange(w)
	ex.wt, ex.h2 = p.opts.ClientTimeout, r.ProtoMajor >= 2
	defer p.record(ex, r)
	p.dispatch(ex, r)
}

// dispatch is the one decision. The fence is read here and nowhere else on
// the way in: the term sent to the backend is the one checked last. A
// request held for an active node comes back here when this node became
// active itself meanwhile.
func (p *Proxy) dispatch(ex *exchange, r *http.Request) {
	if !p.screen(ex, r) {
		return
	}
	marked := screenForwarded(p.opts.ForwardSecret, r)
	for {
		if term, ok := p.opts.Fence.Fence(); ok {
			ex.route = PathLocal
			ok, waited := p.gate.enter(r.Context())
			if !ok {
				busyAnswer(ex, r, p.retryAfter)
				return
			}
			if waited {
				// The fence read before the wait is stale: read it again,
				// as the last thing before the backend.
				if term, ok = p.opts.Fence.Fence(); !ok {
					p.gate.leave()
					continue
				}
			}
			p.serveLocal(ex, r, term)
			return
		}
		target, local := p.fwd.find(r, p.opts.Fence, marked)
		switch {
		case local:
			continue // became active while the request waited
		case target == nil:
			ex.route = PathRejected
			p.reject(ex)
		default:
			ex.route, ex.forwarded = PathForwarded, true
			p.forward(ex, r, target)
		}
		return
	}
}

// forward passes r to the active node, within the backend concurrency
// limit.
func (p *Proxy) forward(ex *exchange, r *http.Request, target *forwardTarget) {
	if ok, _ := p.gate.enter(r.Context()); !ok {
		busyAnswer(ex, r, p.retryAfter)
		return
	}
	defer p.gate.leave() // also when the handler is aborted (a cut body)
	p.fwd.forward(ex, r, target)
}

// serveLocal proxies to the local backend under term. The caller holds a
// backend slot, which serveLocal gives back.
func (p *Proxy) serveLocal(ex *exchange, r *http.Request, term uint64) {
	defer p.gate.leave() // also when the handler is aborted (a cut body)
	ex.route, ex.path, ex.term = PathLocal, PathLocal, term
	if p.identKey != "" {
		ex.ident = p.identHeader(term) // written by ex.WriteHeader
	}
	if r.Context().Err() != nil {
		// Gone already (an HTTP/2 stream reset right after its headers,
		// or while it waited for a slot): nothing goes to the backend.
		clientGone(ex, r)
		return
	}
	p.begin()
	defer p.end()
	if p.opts.Observer != nil {
		p.opts.Observer.RequestStarted()
	}
	p.serveBackend(ex, r, term)
}

// serveBackend is the one seam between the local path and the two ways to
// the backend: the fast path (fastpath.go) for what it takes, and
// httputil.ReverseProxy for everything else and whenever the fast path
// gives a request back before writing anything (errFallback). Both answer
// through modifyResponse and errorHandler; that they send the backend the
// same request and the client the same answer is what the differential
// tests (fastpath_test.go) check.
func (p *Proxy) serveBackend(w http.ResponseWriter, r *http.Request, term uint64) {
	if p.fast != nil && fastEligible(r) && p.serveFast(w, r, term) == nil {
		p.releaseBody(r)
		return
	}
	if p.fenceKey != "" {
		r.Header[p.fenceKey] = p.termHeader(term)
	}
	if r.Header.Get("Upgrade") != "" {
		w = &hijackTracker{ResponseWriter: w, set: &p.upgraded}
	}
	p.rp.ServeHTTP(w, r)
}

// reject answers a request this node must not serve locally.
func (p *Proxy) reject(ex *exchange) { rejectAnswer(ex, p.retryAfter) }

// rejectAnswer is the 503 of a node that is not active.
func rejectAnswer(ex *exchange, retryAfter string) {
	ex.path = PathRejected
	h := ex.Header()
	h.Set("Retry-After", retryAfter)
	h.Set("Connection", "close") // reconnect through the load balancer
	h.Set("Content-Type", "text/plain; charset=utf-8")
	ex.WriteHeader(http.StatusServiceUnavailable)
	io.WriteString(ex, "baton: this node is not active\n")
}

// modifyResponse sees the backend's answer before it is written: the
// passive health signal, and Connection: close when the node was demoted
// while the request ran.
func (p *Proxy) modifyResponse(res *http.Response) error {
	if _, ok := p.opts.Fence.Fence(); !ok && res.StatusCode != http.StatusSwitchingProtocols && p.hold.closeClients() {
		// Demoted while this request ran: the client must reconnect
		// through the load balancer for its next request.
		res.Header.Set("Connection", "close")
	}
	p.observeDone(res.Request, res.StatusCode, false)
	if p.backendFailing.Load() && p.backendFailing.CompareAndSwap(true, false) {
		p.log.Info("backend answering again", zap.Int("status", res.StatusCode))
	}
	return nil
}

// errorHandler is the one place where local proxy faults become status
// codes.
func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	code, client := clientFault(r.Context(), w)
	if !client {
		code = ErrorStatus(r.Context(), err)
	}
	// A client that went away or sent a broken body says nothing about
	// the backend.
	p.observeDone(r, code, !client)
	if client {
		p.log.Debug("request failed on the client's side", zap.String("path", r.URL.Path), zap.Int("status", code), zap.Error(err))
		clientFailed(w, r, code)
		return
	}
	if p.backendFailing.CompareAndSwap(false, true) {
		p.log.Warn("backend request failed", zap.Int("status", code), zap.Error(err))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	io.WriteString(w, http.StatusText(code)+"\n")
}

// observeDone tells the Observer that a local request ended. req is the
// request sent to the backend: on the fast path the inbound one, through
// httputil.ReverseProxy the outbound one, whose path is backend.url's path
// joined with the inbound one (SetURL); taking basePath off again gives
// the inbound path, without an allocation.
func (p *Proxy) observeDone(req *http.Request, status int, proxyErr bool) {
	switch {
	case p.pathObs != nil:
		path := ""
		if req != nil && req.URL != nil {
			path = strings.TrimPrefix(req.URL.Path, p.basePath)
		}
		p.pathObs.RequestDonePath(path, status, proxyErr)
	case p.opts.Observer != nil:
		p.opts.Observer.RequestDone(status, proxyErr)
	}
}

// clientGone answers a request whose context was cancelled because the
// client went away. Usually nobody reads this; but net/http cannot tell an
// HTTP/1 client that went away from one that only half-closed its side
// after sending, and such a client would otherwise get the server's
// implicit empty "200 OK" for a request that was never answered, on a
// connection it then must not reuse. An HTTP/2 client cancelled one stream
// (a browser navigating away): its connection stays, as "Connection:
// close" there would make the server send GOAWAY for all its streams. The
// outcome records 499.
func clientGone(w http.ResponseWriter, r *http.Request) {
	if ex := exchangeOf(w); ex != nil {
		ex.gone = true
	}
	h := w.Header()
	if r.ProtoMajor < 2 {
		h.Set("Connection", "close")
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusBadGateway)
	io.WriteString(w, "baton: request cancelled\n")
}

// clientFailed answers a request that failed on the client's side (see
// clientFault): 499 is clientGone, the others close an HTTP/1 connection,
// whose framing can no longer be trusted.
func clientFailed(w http.ResponseWriter, r *http.Request, code int) {
	if code == StatusClientClosedRequest {
		clientGone(w, r)
		return
	}
	h := w.Header()
	if r.ProtoMajor < 2 {
		h.Set("Connection", "close")
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	io.WriteString(w, http.StatusText(code)+"\n")
}

// exchangeOf finds the request's exchange under w's wrappers (the upgrade
// tracker), or nil.
func exchangeOf(w http.ResponseWriter) *exchange {
	for {
		switch v := w.(type) {
		case *exchange:
			return v
		case interface{ Unwrap() http.ResponseWriter }:
			w = v.Unwrap()
		default:
			return nil
		}
	}
}

// ErrorStatus maps a proxy error to the status the client gets: 499 when the
// client cancelled, 504 when the backend timed out, 502 otherwise (refused,
// reset, malformed answer).
func ErrorStatus(ctx context.Context, err error) int {
	if ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled) {
		return StatusClientClosedRequest
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

func (p *Proxy) begin() { p.inFlight.Add(1) }

// end counts a local request out. Only while a WaitIdle waits does it take
// the lock, so the request path has no lock and no allocation here. Either
// end sees the waiter (and closes its channel once nothing is in flight),
// or the waiter registered after the count reached 0 and sees that itself.
func (p *Proxy) end() {
	if p.inFlight.Add(-1) == 0 && p.idleWaiters.Load() > 0 {
		p.idleMu.Lock()
		if p.idle != nil && p.inFlight.Load() == 0 {
			close(p.idle)
			p.idle = nil
		}
		p.idleMu.Unlock()
	}
}

// HoldClients keeps client connections open until the given time: until
// then, forwarded responses and responses of requests that outlived a
// demotion do not carry Connection: close. Right after a demotion the load
// balancer may not yet have seen the new active's probe answer 200; a
// client pushed to reconnect then would find no server up. Its requests
// are forwarded instead until the load balancer has caught up.
func (p *Proxy) HoldClients(until time.Time) { p.hold.until.Store(until.UnixNano()) }

// clientHold is HoldClients' instant, shared by the local path and the
// forwarder.
type clientHold struct{ until atomic.Int64 } // unix ns

func (h *clientHold) closeClients() bool { return time.Now().UnixNano() >= h.until.Load() }

// SetStandby changes what a node that may not serve locally does
// (StandbyForward or StandbyReject) and how long a request waits for an
// active node. It is safe to call while serving.
func (p *Proxy) SetStandby(mode string, hold time.Duration) { p.fwd.set(mode, hold) }

// Upgraded is the number of upgraded (WebSocket) client connections open.
func (p *Proxy) Upgraded() int { return p.upgraded.len() }

// InFlight is the number of requests being served by the local backend.
func (p *Proxy) InFlight() int64 { return p.inFlight.Load() }

// Counters are the data plane's request counts since start.
type Counters struct {
	Local     uint64 // served by the local backend
	Forwarded uint64 // passed to the active node
	Rejected  uint64 // answered 503 because the node was not active
	Busy      uint64 // answered 503 because no backend slot came in time (counted in Local or Forwarded too)
}

// Counters returns the request counts since start.
func (p *Proxy) Counters() Counters {
	return Counters{Local: p.served.Load(), Forwarded: p.forwarded.Load(), Rejected: p.rejected.Load(), Busy: p.busy.Load()}
}

// BackendSlots is the backend concurrency limit's state: requests at the
// backend or active node now, requests waiting for a slot, and the limit
// (0: none).
func (p *Proxy) BackendSlots() (inUse, waiting, limit int) {
	inUse, waiting = p.gate.stats()
	if p.gate != nil {
		limit = cap(p.gate.slots)
	}
	return inUse, waiting, limit
}

// CutOff ends what a drain deadline must end: every upgraded (WebSocket)
// client connection and every connection to the local backend, which fails
// the requests still running on them. It returns how many requests and
// upgraded connections were cut.
func (p *Proxy) CutOff() (requests int64, upgraded int) {
	requests = p.inFlight.Load()
	upgraded = p.upgraded.closeAll()
	p.conns.closeAll()
	return requests, upgraded
}

// WaitIdle blocks until no request is being served locally or ctx is done.
// It returns the number still in flight when it gave up.
func (p *Proxy) WaitIdle(ctx context.Context) int64 {
	p.idleWaiters.Add(1)
	defer p.idleWaiters.Add(-1)
	for {
		p.idleMu.Lock()
		if p.inFlight.Load() == 0 {
			p.idleMu.Unlock()
			return 0
		}
		if p.idle == nil {
			p.idle = make(chan struct{})
		}
		ch := p.idle
		p.idleMu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return p.inFlight.Load()
		}
	}
}

// Close releases the idle connections to the backend and to peers.
func (p *Proxy) Close() {
	if p.fast != nil {
		p.fast.close()
	}
	p.transport.CloseIdleConnections()
	p.fwd.close()
}

// canonicalAddr is u's host:port, with the scheme's default port.
func canonicalAddr(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// bufferPool recycles the 32 KiB copy buffers of the reverse proxy.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *(buffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }
