package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// What a client's request may not do, checked once before the decision
// (screen), and how a failure that is the client's own is told from the
// backend's (clientBody, clientFault).

// DefaultUpgradeProtocols are the protocols a client may upgrade a
// connection to by default: WebSocket only. An upgraded connection is a
// byte tunnel to the app that the fence no longer sees request by request
// (it lasts until it ends or the drain deadline cuts it), so nothing that
// multiplexes requests (h2c: HTTP/2 over the upgraded connection) may ride
// in one.
var DefaultUpgradeProtocols = []string{"websocket"}

// screen refuses what no path may take: a request target that would
// change meaning on its way to the backend, a method that is not a token,
// and (HTTP/2) an :authority that an HTTP/1 Host header could not carry;
// net/http's HTTP/1 server checks the last two itself, its HTTP/2 server
// does not. It removes an Upgrade to a protocol that is not allowed (the
// request goes on as a plain one, as RFC 9110 lets a server ignore
// Upgrade), and wraps the body so a failure to read it is told apart from
// the backend's. It reports false when it answered.
func (p *Proxy) screen(ex *exchange, r *http.Request) bool {
	switch {
	case strings.ContainsAny(r.URL.RawQuery, " #"):
		// A space can come only from an HTTP/2 client's :path (an HTTP/1
		// request line cannot hold one), a '#' from either (net/http keeps
		// it in the query). Written to the backend's request line, a space
		// adds tokens to it and a '#' ends its target.
		refuse(ex, r, "invalid request target")
		return false
	case !validHeaderName(r.Method):
		refuse(ex, r, "invalid method")
		return false
	case r.ProtoMajor >= 2 && !httpguts.ValidHostHeader(r.Host):
		refuse(ex, r, "invalid :authority")
		return false
	}
	if _, ok := r.Header["Upgrade"]; ok && !p.upgradeAllowed(r.Header["Upgrade"]) {
		delete(r.Header, "Upgrade")
		delete(r.Header, "Http2-Settings")
	}
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		ex.body = &clientBody{ReadCloser: r.Body, timeout: p.opts.ClientTimeout,
			expect: r.ProtoMajor == 1 && expectsContinue(r.Header)}
		if p.opts.ClientTimeout > 0 {
			ex.body.dl, _ = ex.ResponseWriter.(deadliner)
		}
		r.Body = ex.body
		if !p.bufferBody(ex, r) {
			return false
		}
	}
	return true
}

// deadliner is what net/http's response writers (HTTP/1 and HTTP/2) offer
// http.ResponseController, reached without allocating one.
type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// bufferBody reads a small request body (up to Options.BufferBody bytes,
// declared or chunked) in full before the request takes a backend slot,
// so a client that trickles it holds no backend connection; a chunked
// one is then sent with its length. A bigger body (or one with trailers)
// is streamed. A failure to read is answered at once (see clientFault)
// and reported false.
func (p *Proxy) bufferBody(ex *exchange, r *http.Request) bool {
	limit := int64(p.opts.BufferBody)
	if limit <= 0 || r.ContentLength > limit || r.Trailer != nil {
		return true
	}
	if r.ContentLength > 0 {
		bp := p.bodyBuf(r.ContentLength)
		buf := (*bp)[:r.ContentLength]
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			p.bodyBufs.Put(bp)
			code, _ := clientFault(r.Context(), ex)
			clientFailed(ex, r, max(code, http.StatusBadRequest))
			return false
		}
		pb := &prefixedBody{body: r.Body, pooled: bp}
		pb.br.Reset(buf)
		pb.Reader = &pb.br
		r.Body = pb
		return true
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		code, _ := clientFault(r.Context(), ex)
		clientFailed(ex, r, max(code, http.StatusBadRequest))
		return false
	}
	if int64(len(buf)) > limit {
		// Longer than the buffer: stream it, the part read first.
		r.Body = &prefixedBody{Reader: io.MultiReader(bytes.NewReader(buf), r.Body), body: r.Body}
		return true
	}
	r.ContentLength, r.TransferEncoding = int64(len(buf)), nil
	r.Body = &prefixedBody{Reader: bytes.NewReader(buf), body: r.Body}
	return true
}

// prefixedBody reads from Reader and closes the request's own body.
type prefixedBody struct {
	io.Reader
	body   io.ReadCloser
	br     bytes.Reader // the Reader of a body read in full into pooled
	pooled *[]byte      // from Proxy.bodyBufs; nil: not pooled
}

func (b *prefixedBody) Close() error { return b.body.Close() }

// bodyBuf returns a buffer of at least n (and Options.BufferBody) bytes
// for a body read in full. The garbage collector would otherwise see one
// such allocation per request with a body (64 KiB for a body of 64 KiB).
func (p *Proxy) bodyBuf(n int64) *[]byte {
	if bp, ok := p.bodyBufs.Get().(*[]byte); ok && int64(len(*bp)) >= n {
		return bp
	}
	b := make([]byte, max(n, int64(p.opts.BufferBody)))
	return &b
}

// releaseBody gives the buffer of r's body back to the pool, once the fast
// path has sent the request: it reads the body in the handler's goroutine
// only, so nothing reads the buffer after serveFast returned. (Through
// http.Transport a body may still be read after the handler returned: such
// a buffer is left to the garbage collector.)
func (p *Proxy) releaseBody(r *http.Request) {
	if pb, ok := r.Body.(*prefixedBody); ok && pb.pooled != nil {
		bp := pb.pooled
		pb.pooled = nil
		pb.br.Reset(nil)
		p.bodyBufs.Put(bp)
	}
}

// refuse answers 400 to a request refused before any decision. An HTTP/1
// connection is closed (whoever sent this may be probing for a parser that
// disagrees); on HTTP/2 only the stream ends, as "Connection: close" there
// would end the client's other streams too.
func refuse(ex *exchange, r *http.Request, why string) {
	ex.route = routeRefused
	if r.ProtoMajor < 2 {
		ex.Header().Set("Connection", "close")
	}
	http.Error(ex, why, http.StatusBadRequest)
}

// upgradeAllowed reports whether every protocol the Upgrade header names
// is allowed (Options.UpgradeProtocols; a version after '/' is ignored).
func (p *Proxy) upgradeAllowed(vv []string) bool {
	n := 0
	for _, v := range vv {
		for f := range strings.SplitSeq(v, ",") {
			f = textproto.TrimString(f)
			if f == "" {
				continue
			}
			name, _, _ := strings.Cut(f, "/")
			found := false
			for _, a := range p.upgrades {
				if strings.EqualFold(name, a) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
			n++
		}
	}
	return n > 0
}

// clientBody is a request body that remembers the first error reading it
// (other than its end): the client's, not the backend's.
// With a timeout, each read must make progress within it (408 otherwise);
// the deadline is lifted at the body's end, as net/http then watches the
// connection for the client going away and a deadline would look like it.
//
// An HTTP/1 request that expects 100 Continue and is answered before its
// body was read to the end (the backend refused it) is answered with
// Connection: close (exchange.WriteHeader): net/http's server closes such
// a connection itself, but only when it sees its own body reader, which
// this one hides; it would otherwise wait to discard a body the client
// does not send without a 100.
type clientBody struct {
	io.ReadCloser
	err     atomic.Pointer[error]
	timeout time.Duration
	dl      deadliner // nil: no deadlines
	expect  bool      // HTTP/1, Expect: 100-continue
	eof     atomic.Bool
}

// unread reports whether the client may still be waiting for a 100
// before it sends the body.
func (b *clientBody) unread() bool { return b.expect && !b.eof.Load() }

func (b *clientBody) Read(p []byte) (int, error) {
	if b.dl != nil {
		b.dl.SetReadDeadline(time.Now().Add(b.timeout))
	}
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		if b.dl != nil {
			b.dl.SetReadDeadline(time.Time{})
		}
		if err != io.EOF {
			e := err // only a failed read moves it to the heap
			b.err.CompareAndSwap(nil, &e)
		} else {
			b.eof.Store(true)
		}
	}
	return n, err
}

// expectsContinue: the client asked for a 100 before it sends its body
// (net/http's server answers any other expectation 417 itself).
func expectsContinue(h http.Header) bool {
	vv, ok := h["Expect"]
	return ok && len(vv) > 0 && strings.EqualFold(textproto.TrimString(vv[0]), "100-continue")
}

// clientFault reports whether a failed exchange with a backend (local or
// the active node) failed on the client's side, and the status that
// answers it: 499 when the client went away, 408 when its body did not
// arrive in time, 400 when the body was malformed (bad chunk framing, more
// data than declared) or cut short.
// Such a failure says nothing about the backend: it is neither counted
// against it nor logged as its failure.
func clientFault(ctx context.Context, w http.ResponseWriter) (code int, ok bool) {
	gone := ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled)
	var ep *error
	if ex := exchangeOf(w); ex != nil && ex.body != nil {
		ep = ex.body.err.Load()
	}
	if ep == nil {
		if gone {
			return StatusClientClosedRequest, true
		}
		return 0, false
	}
	var ne net.Error
	switch err := *ep; {
	case errors.As(err, &ne) && ne.Timeout():
		return http.StatusRequestTimeout, true
	case errors.Is(err, io.ErrUnexpectedEOF):
		// Cut short: the client closed its side before the declared
		// length, and may still read the answer.
		return http.StatusBadRequest, true
	case gone, errors.Is(err, net.ErrClosed):
		return StatusClientClosedRequest, true
	}
	return http.StatusBadRequest, true // malformed
}
