package proxy

import (
	"net/http"
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

func (p *Proxy) observe(path Path, start time.Time) {
	p.opts.OnDuration(path, time.Since(start))
}

// SetAccessLog turns the access log on (one line per request to log) or
// off (nil). It is safe to call while serving.
func (p *Proxy) SetAccessLog(log *zap.Logger) { p.accessLog.Store(log) }

// accessWriter records what the access log needs. It exists only while the
// access log is on.
type accessWriter struct {
	http.ResponseWriter
	start  time.Time
	status int
	bytes  int64
	path   Path
	term   uint64
	gone   bool // the client went away (see clientGone): logged as 499
}

func (a *accessWriter) WriteHeader(code int) {
	if a.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		a.status = code // informational answers (103) come before the real one
	}
	a.ResponseWriter.WriteHeader(code)
}

func (a *accessWriter) Write(b []byte) (int, error) {
	if a.status == 0 {
		a.status = http.StatusOK
	}
	n, err := a.ResponseWriter.Write(b)
	a.bytes += int64(n)
	return n, err
}

func (a *accessWriter) Unwrap() http.ResponseWriter { return a.ResponseWriter }

func (a *accessWriter) log(l *zap.Logger, r *http.Request) {
	status := a.status
	if status == 0 || a.gone {
		status = StatusClientClosedRequest // nothing was written: the client went away
	}
	l.Info("request",
		zap.String("client", r.RemoteAddr),
		zap.String("method", r.Method),
		zap.String("host", r.Host),
		zap.String("path", r.URL.Path),
		zap.Int("status", status),
		zap.Int64("bytes", a.bytes),
		zap.Duration("duration", time.Since(a.start)),
		zap.Stringer("taken", a.path),
		zap.Uint64("term", a.term))
}
