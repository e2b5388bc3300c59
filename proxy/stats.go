package proxy

import (
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Path is the way a request took through the node.
type Path int

// The paths of a request.
const (
	PathLocal     Path = iota // served by the local backend
	PathForwarded             // passed to the active node
	PathRejected              // answered 503 by this node
	numPaths
)

func (p Path) String() string {
	switch p {
	case PathLocal:
		return "local"
	case PathForwarded:
		return "forwarded"
	case PathRejected:
		return "rejected"
	}
	return "unknown"
}

// CodeClasses are the labels of StatusCounts' second index.
var CodeClasses = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// StatusCounts returns the answers given so far, by path and by status
// class (see CodeClasses). 499 (client gone) counts as 4xx.
func (p *Proxy) StatusCounts() [numPaths][6]uint64 {
	var out [numPaths][6]uint64
	for i := range p.codes {
		for j := range p.codes[i] {
			out[i][j] = p.codes[i][j].Load()
		}
	}
	return out
}

func (p *Proxy) count(path Path, code int) {
	class := code / 100
	if class < 1 || class > 5 {
		class = 0
	}
	p.codes[path][class].Add(1)
}

// SetAccessLog turns the access log on (one line per request to log) or
// off (nil). It is safe to call while serving.
func (p *Proxy) SetAccessLog(log *zap.Logger) { p.accessLog.Store(log) }

// routeRefused is the route of a request refused before any decision (a
// malformed target): it is answered, and logged in the access log, but
// counts on no path.
const routeRefused Path = -1

// outcome is what one request did, as record needs it.
type outcome struct {
	start     time.Time
	route     Path   // the path the decision took (routeRefused: none)
	path      Path   // the path that answered (a failed forward answers as rejected)
	forwarded bool   // the request was passed to the active node
	term      uint64 // the fencing term it was served under (local only)
	status    int    // the final status written (or 101); 0 if nothing was
	bytes     int64
	gone      bool          // the client went away (see clientGone): 499
	busy      bool          // no backend slot came in time (busyAnswer)
	wt        time.Duration // Options.ClientTimeout for writes; 0: none
	wdl       time.Time     // the write deadline set last (zero: none)
	h2        bool          // an HTTP/2 stream (see Write)
	body      *clientBody   // the request body, when it has one (see clientFault)

	// ident is the identify header to answer with (local only; nil: none;
	// see identify.go).
	ident *identValue
}

// exchange is a request's response writer: it records the outcome as the
// answer is written. Exchanges are pooled, so the request path allocates
// nothing for them.
type exchange struct {
	http.ResponseWriter
	outcome
}

// h2Buffered is what net/http's HTTP/2 server buffers of a stream's
// answer before a write waits for the connection (its handler chunk size).
const h2Buffered = 4 << 10

var exchanges = sync.Pool{New: func() any { return new(exchange) }}

func newExchange(w http.ResponseWriter) *exchange {
	ex := exchanges.Get().(*exchange)
	ex.ResponseWriter = w
	ex.outcome = outcome{start: time.Now()}
	return ex
}

func (ex *exchange) WriteHeader(code int) {
	if ex.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		ex.status = code // informational answers (103) come before the real one
		if ex.ident != nil {
			ex.Header()[ex.ident.key] = ex.ident.v // after the backend's headers: ours wins
		}
		if ex.body != nil && code >= 200 && ex.body.unread() {
			ex.Header().Set("Connection", "close") // see clientBody
		}
	}
	ex.ResponseWriter.WriteHeader(code)
}

func (ex *exchange) Write(b []byte) (int, error) {
	if ex.status == 0 {
		ex.status = http.StatusOK
	}
	if ex.wt > 0 && (!ex.h2 || ex.bytes+int64(len(b)) > h2Buffered) {
		// A write (with the flush after it) that makes no progress for
		// the client timeout fails: the deadline is always at least half
		// of it ahead when a write starts, and moved only then, so most
		// writes cost no deadline call. An HTTP/2 answer that fits the
		// stream's write buffer takes none: those writes cannot block,
		// its last piece is sent after the handler returned (when only
		// the stream's goroutine waits, bounded by the stream limit and
		// the connection's WriteByteTimeout), and each deadline costs a
		// message to the connection's serve loop and a timer.
		if now := time.Now(); ex.wdl.Sub(now) < ex.wt/2 {
			if dl, ok := ex.ResponseWriter.(deadliner); ok {
				ex.wdl = now.Add(ex.wt)
				dl.SetWriteDeadline(ex.wdl)
			}
		}
	}
	n, err := ex.ResponseWriter.Write(b)
	ex.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the server's writer (flush,
// hijack, deadlines).
func (ex *exchange) Unwrap() http.ResponseWriter { return ex.ResponseWriter }

// record is the one place where a request's outcome is accounted: the
// request counters, the status counts by path, the duration histogram and
// the access log. (The passive health signals go to the Observer when the
// backend's answer arrives, not here: a long response body or an upgraded
// connection says nothing about the backend once its headers came.) It
// returns the exchange to its pool.
func (p *Proxy) record(ex *exchange, r *http.Request) {
	o := &ex.outcome
	status := o.status
	if status == 0 || o.gone {
		status = StatusClientClosedRequest // nothing was written: the client went away
	}
	if o.route != routeRefused {
		switch {
		case o.route == PathLocal:
			p.served.Add(1)
		case o.forwarded:
			p.forwarded.Add(1)
		}
		switch {
		case o.busy:
			p.busy.Add(1)
		case o.path == PathRejected:
			p.rejected.Add(1)
		}
		p.count(o.path, status)
		if p.opts.OnDuration != nil && o.route != PathRejected {
			p.opts.OnDuration(o.route, time.Since(o.start))
		}
	}
	if al := p.accessLog.Load(); al != nil {
		path := o.path
		if o.route == routeRefused {
			path = PathLocal
		}
		al.Info("request",
			zap.String("client", r.RemoteAddr),
			zap.String("method", r.Method),
			zap.String("host", r.Host),
			zap.String("path", r.URL.Path),
			zap.Int("status", status),
			zap.Int64("bytes", o.bytes),
			zap.Duration("duration", time.Since(o.start)),
			zap.Stringer("taken", path),
			zap.Uint64("term", o.term))
	}
	if !o.wdl.IsZero() && r.ProtoMajor < 2 {
		// HTTP/1 keeps a write deadline for the connection's next
		// request; lift it. An HTTP/2 stream's deadline ends with the
		// stream (and must not be lifted here: the last piece of the
		// answer is written after the handler returns), and each call
		// costs a message to the connection's serve loop.
		ex.ResponseWriter.(deadliner).SetWriteDeadline(time.Time{})
	}
	ex.ResponseWriter = nil
	exchanges.Put(ex)
}
