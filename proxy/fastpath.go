package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// The fast path serves the common request - any method, with or without a
// body, to a plain-HTTP backend - in the handler's goroutine: it writes the
// request to a pooled keep-alive connection and reads the answer with the
// standard library's parser (http.ReadResponse), with none of
// http.Transport's per-request goroutine hand-offs (writeLoop, readLoop,
// body-EOF signals) and without cloning the request. Upgrades, trailers
// announced on the request, a body of unknown length on a method that
// usually has none (http.Transport probes those first), HTTPS backends and
// backend URLs with a path take httputil.ReverseProxy, unchanged.
//
// What it keeps from the standard path: the inbound request was parsed and
// checked by net/http's server (smuggling defences: conflicting
// Content-Length/Transfer-Encoding, invalid header bytes, chunk framing);
// the outbound header block is checked again here (names are tokens,
// values have no CR, LF or NUL) and the request falls back to the standard
// path if anything is odd; hop-by-hop headers are removed both ways, as
// httputil.ReverseProxy does; X-Forwarded-* are set as by the Rewrite
// hook; the response is parsed by http.ReadResponse; 1xx answers are
// passed on; trailers, streaming (flush per write) and close-delimited
// bodies behave as with ReverseProxy; queries ReverseProxy would clean go
// to it. As http.Transport: a response header block is bounded
// (MaxResponseHeaderBytes), an idle connection is looked at before reuse
// (bytes nobody asked for, or the backend's EOF, retire it) and closed
// after IdleConnTimeout, and a request on a reused connection that fails
// before any byte of the answer arrived is retried once on a new
// connection, when it is replayable (GET, HEAD, OPTIONS, TRACE or an
// Idempotency-Key) and no byte of its body was sent.
//
// Request bodies are streamed, never held whole here (screen.go may have
// read a small one already, limits.buffer_body): read from the client into
// a pooled buffer and written to the backend with the framing http.Transport
// gives them (Content-Length when the length is known - 0 only for POST,
// PUT and PATCH -, chunked otherwise, request trailers not sent, as
// ReverseProxy does not send undeclared ones either), in the handler's
// goroutine, before the answer is read. A backend that takes no byte of a
// large body for ResponseHeaderTimeout fails the request (504). A body that
// fails on the client's side (cut short, malformed, too slow, client gone)
// is answered 400/408/499 (clientFault) and the backend connection, which
// holds part of a request, is closed; so is one whose body could not be
// written, after the backend's answer, if it sent one, was relayed.
//
// Expect: 100-continue is forwarded, as http.Transport does: the header
// block goes first and the body waits for the backend's 100 (relayed to
// the client, which then sends its body; net/http's automatic 100 is not
// sent on top of it), for at most ExpectContinueTimeout (1 s; then the body
// is sent anyway, and reading it makes net/http send the client its
// automatic 100), or for a final answer, which is relayed without sending
// the body; that backend connection is then closed. (A body up to
// limits.buffer_body was read before, which made net/http send its 100
// then; the backend's is relayed too, as ReverseProxy does. Over HTTP/2,
// net/http's server takes Expect off the request and sends its 100 when
// the body is first read: nothing is forwarded, on both paths.)

// fastConn is one keep-alive connection to the backend.
type fastConn struct {
	c     net.Conn
	br    *bufio.Reader
	bw    *bufio.Writer
	used  time.Time // when it went idle
	left  int64     // bytes the reader may still take (header limit)
	probe *idleProbe

	mu      sync.Mutex
	gen     uint64 // numbers the exchanges; a salvage of an older one does nothing
	spoiled bool   // the client went away: the salvage deadline must stay
}

// Read reads from the connection within the header budget (left), as
// http.Transport's persistConn does.
func (fc *fastConn) Read(b []byte) (int, error) {
	if fc.left <= 0 {
		return 0, errors.New("proxy: backend response header too large")
	}
	if int64(len(b)) > fc.left {
		b = b[:fc.left]
	}
	n, err := fc.c.Read(b)
	fc.left -= int64(n)
	return n, err
}

// begin starts an exchange on fc and returns the function that salvages
// it when the client goes away (see limits.go): the backend then gets
// salvageWindow more to answer, a deadline setReadDeadline will not undo,
// so the connection can be kept instead of cut.
func (fc *fastConn) begin() (salvage func()) {
	fc.mu.Lock()
	gen := fc.gen
	fc.mu.Unlock()
	return func() {
		fc.mu.Lock()
		if fc.gen == gen {
			fc.spoiled = true
			fc.c.SetDeadline(time.Now().Add(salvageWindow))
		}
		fc.mu.Unlock()
	}
}

// finish ends the exchange: a salvage that has not run yet does nothing,
// and the salvage deadline, if one was set, is lifted.
func (fc *fastConn) finish() {
	fc.mu.Lock()
	fc.gen++
	if fc.spoiled {
		fc.spoiled = false
		fc.c.SetDeadline(time.Time{})
	}
	fc.mu.Unlock()
}

func (fc *fastConn) setReadDeadline(t time.Time) {
	fc.mu.Lock()
	if !fc.spoiled {
		fc.c.SetReadDeadline(t)
	}
	fc.mu.Unlock()
}

func (fc *fastConn) setWriteDeadline(t time.Time) {
	fc.mu.Lock()
	if !fc.spoiled {
		fc.c.SetWriteDeadline(t)
	}
	fc.mu.Unlock()
}

// fastPool holds the idle connections to the backend, most recent first.
type fastPool struct {
	addr        string
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	max         int
	idleTimeout time.Duration

	mu     sync.Mutex
	idle   []*fastConn // oldest first
	closed bool
	reaper *time.Timer // runs while idle is not empty
}

// reap closes the connections idle for too long.
func (fp *fastPool) reap() {
	now := time.Now()
	fp.mu.Lock()
	n := 0
	for n < len(fp.idle) && now.Sub(fp.idle[n].used) >= fp.idleTimeout {
		fp.idle[n].c.Close()
		n++
	}
	fp.idle = append(fp.idle[:0], fp.idle[n:]...)
	if len(fp.idle) > 0 && !fp.closed {
		fp.reaper.Reset(fp.idle[0].used.Add(fp.idleTimeout).Sub(now))
	}
	fp.mu.Unlock()
}

// get returns an idle connection, or nil when there is none.
func (fp *fastPool) get(now time.Time) *fastConn {
	for {
		fp.mu.Lock()
		n := len(fp.idle)
		if n == 0 {
			fp.mu.Unlock()
			return nil
		}
		fc := fp.idle[n-1]
		fp.idle[n-1] = nil
		fp.idle = fp.idle[:n-1]
		fp.mu.Unlock()
		if now.Sub(fc.used) < fp.idleTimeout && fc.probe.clean() {
			return fc
		}
		// Idle too long (the backend has probably closed it), closed by
		// the backend, or it sent bytes nobody asked for.
		fc.c.Close()
	}
}

// put makes fc idle, or closes it when the pool is full or closed.
func (fp *fastPool) put(fc *fastConn, now time.Time) {
	fc.used = now
	fp.mu.Lock()
	if fp.closed || len(fp.idle) >= fp.max {
		fp.mu.Unlock()
		fc.c.Close()
		return
	}
	fp.idle = append(fp.idle, fc)
	if len(fp.idle) == 1 {
		if fp.reaper == nil {
			fp.reaper = time.AfterFunc(fp.idleTimeout, fp.reap)
		} else {
			fp.reaper.Reset(fp.idleTimeout)
		}
	}
	fp.mu.Unlock()
}

func (fp *fastPool) dialConn(ctx context.Context) (*fastConn, error) {
	c, err := fp.dial(ctx, "tcp", fp.addr)
	if err != nil {
		return nil, err
	}
	fc := &fastConn{c: c, bw: bufio.NewWriterSize(c, 4<<10), probe: newIdleProbe(c)}
	fc.br = bufio.NewReaderSize(fc, 4<<10)
	return fc, nil
}

// close closes the idle connections; later puts close theirs.
func (fp *fastPool) close() {
	fp.mu.Lock()
	idle := fp.idle
	fp.idle, fp.closed = nil, true
	if fp.reaper != nil {
		fp.reaper.Stop()
	}
	fp.mu.Unlock()
	for _, fc := range idle {
		fc.c.Close()
	}
}

// fastEligible reports whether r can take the fast path.
func fastEligible(r *http.Request) bool {
	if r.Trailer != nil {
		return false // trailers announced on the request: ReverseProxy
	}
	switch {
	case r.ContentLength == 0:
		// An HTTP/1 request without a body has http.NoBody. An HTTP/2 one
		// always has a body stream, empty here (the stream ended with its
		// headers, or declared no content); ReverseProxy sends none either.
		if r.ProtoMajor < 2 && r.Body != nil && r.Body != http.NoBody {
			return false
		}
	case r.Body == nil || r.Body == http.NoBody:
		return false
	case r.ContentLength < 0 && usuallyBodiless(r.Method):
		// http.Transport reads a byte of such a body first, to send an
		// empty one as none: leave it to it.
		return false
	}
	if r.URL.Opaque != "" || r.URL.Path == "" || r.URL.Path[0] != '/' {
		return false
	}
	if !cleanQuery(r.URL.RawQuery) {
		return false // ReverseProxy (Rewrite) re-encodes it: let it
	}
	_, upgrade := r.Header["Upgrade"]
	return !upgrade
}

// usuallyBodiless: the methods http.Transport probes a body of unknown
// length for (requestMethodUsuallyLacksBody there).
func usuallyBodiless(method string) bool {
	switch method {
	case "GET", "HEAD", "DELETE", "OPTIONS", "PROPFIND", "SEARCH":
		return true
	}
	return false
}

// replayable: a request that may be sent again after a reused connection
// failed before any byte of the answer, as http.Transport's isReplayable
// (whose server-side requests with a body never are: the fast path
// checks separately that no byte of the body was sent).
func replayable(r *http.Request) bool {
	switch r.Method {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	_, k1 := r.Header["Idempotency-Key"]
	_, k2 := r.Header["X-Idempotency-Key"]
	return k1 || k2
}

// cleanQuery reports whether httputil.ReverseProxy would pass q as it is
// (see cleanQueryParams there).
func cleanQuery(q string) bool {
	if strings.Count(q, "&") >= 10000 {
		return false
	}
	for i := 0; i < len(q); i++ {
		switch q[i] {
		case ';':
			return false
		case '%':
			if i+2 >= len(q) || !ishex(q[i+1]) || !ishex(q[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// hopHeaders are removed by proxies (RFC 9110, 7.6.1), as in
// httputil.ReverseProxy.
var hopHeaders = [...]string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

func isHopHeader(k string) bool {
	for _, h := range hopHeaders {
		if k == h {
			return true
		}
	}
	return false
}

// inConnectionHeader reports whether the Connection header lists k.
func inConnectionHeader(conn []string, k string) bool {
	for _, v := range conn {
		for f := range strings.SplitSeq(v, ",") {
			if f = textproto.TrimString(f); f != "" && http.CanonicalHeaderKey(f) == k {
				return true
			}
		}
	}
	return false
}

// errFallback says the request must take the standard path: something in
// it is unusual enough not to be written by hand.
var errFallback = errors.New("proxy: request needs the standard path")

// writeRequest writes r for the backend to bw: request line, Host, the
// client's end-to-end headers, X-Forwarded-*, the fencing header.
func (p *Proxy) writeRequest(bw *bufio.Writer, r *http.Request, term uint64) error {
	if !validHeaderValue(r.Host) || r.Host == "" {
		return errFallback
	}
	conn := r.Header["Connection"]
	_, peer := r.Header[ForwardedHeader] // verified: see screenForwarded
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(r.URL.RequestURI())
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(r.Host)
	bw.WriteString("\r\n")
	for k, vv := range r.Header {
		switch k {
		case "Host", "Content-Length", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", ForwardedHeader, p.fenceKey:
			continue
		}
		if isHopHeader(k) {
			if k == "Te" && teTrailers(vv) {
				bw.WriteString("Te: trailers\r\n") // as ReverseProxy: the one TE a backend may need
			}
			continue
		}
		if len(conn) > 0 && inConnectionHeader(conn, k) {
			continue
		}
		if !validHeaderName(k) {
			return errFallback
		}
		for _, v := range vv {
			if !validHeaderValue(v) {
				return errFallback
			}
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	// X-Forwarded-*, as the Rewrite hook does: those a verified marker
	// vouches for (keepVouched), or this connection's (setXForwarded).
	if peer {
		for _, k := range [...]string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
			for _, v := range r.Header[k] {
				if !validHeaderValue(v) {
					return errFallback
				}
				bw.WriteString(k)
				bw.WriteString(": ")
				bw.WriteString(v)
				bw.WriteString("\r\n")
			}
		}
	} else {
		if clientIP, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			bw.WriteString("X-Forwarded-For: ")
			bw.WriteString(clientIP)
			bw.WriteString("\r\n")
		}
		bw.WriteString("X-Forwarded-Host: ")
		bw.WriteString(r.Host)
		if r.TLS != nil {
			bw.WriteString("\r\nX-Forwarded-Proto: https\r\n")
		} else {
			bw.WriteString("\r\nX-Forwarded-Proto: http\r\n")
		}
	}
	if p.fenceKey != "" {
		bw.WriteString(p.fenceKey)
		bw.WriteString(": ")
		bw.WriteString(p.termHeader(term)[0])
		bw.WriteString("\r\n")
	}
	// The body's framing, as http.Transport writes it (the client's own
	// Content-Length is not copied: it is this).
	switch {
	case r.ContentLength > 0:
		bw.WriteString("Content-Length: ")
		writeUint(bw, uint64(r.ContentLength), 10)
		bw.WriteString("\r\n")
	case r.ContentLength < 0:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	case r.Method == "POST" || r.Method == "PUT" || r.Method == "PATCH":
		bw.WriteString("Content-Length: 0\r\n")
	}
	_, err := bw.WriteString("\r\n")
	return err
}

// writeUint writes n in base 10 or 16, without an allocation.
func writeUint(bw *bufio.Writer, n uint64, base uint64) {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = "0123456789abcdef"[n%base]
		n /= base
		if n == 0 {
			break
		}
	}
	for _, c := range b[i:] {
		bw.WriteByte(c)
	}
}

func teTrailers(vv []string) bool {
	for _, v := range vv {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(f), "trailers") {
				return true
			}
		}
	}
	return false
}

// validHeaderName: a non-empty token (RFC 9110, 5.6.2).
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// validHeaderValue: no control bytes but horizontal tab (RFC 9110, 5.5).
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// serveFast proxies r on the fast path. It returns errFallback, before
// anything was sent to the backend, when r must take the standard path.
func (p *Proxy) serveFast(w http.ResponseWriter, r *http.Request, term uint64) error {
	ctx := r.Context()
	hasBody := r.ContentLength != 0 // fastEligible: 0 is no body
	expect := hasBody && r.ProtoAtLeast(1, 1) && expectsContinue(r.Header)
	fc, reused := p.fast.get(time.Now()), true
	for attempt := 0; ; attempt++ {
		if fc == nil {
			// Not cancelled with the request (the dialer's timeout bounds
			// it): a client that goes away meanwhile leaves the new
			// connection to the pool instead of wasting it, as
			// http.Transport does. A flood of cancelled requests then
			// grows the pool to what it needs and no further.
			var err error
			if fc, err = p.fast.dialConn(context.WithoutCancel(ctx)); err != nil {
				p.errorHandler(w, r, err)
				return nil
			}
			reused = false
			if ctx.Err() != nil {
				p.fast.put(fc, time.Now())
				// The Observer counted the request as started: it ends
				// here, the client's doing (499, not a backend error).
				p.observeDone(r, StatusClientClosedRequest, false)
				clientGone(w, r)
				return nil
			}
		}
		if err := p.writeRequest(fc.bw, r, term); err != nil {
			// Part of a big header block may have been flushed already:
			// the connection cannot carry another request.
			fc.c.Close()
			return errFallback
		}
		// The client going away bounds the rest of the exchange
		// (salvageWindow) instead of cutting the connection at once, as
		// http.Transport does: a flood of cancelled requests then reuses
		// connections instead of opening one each.
		sv := fc.begin()
		stop := context.AfterFunc(ctx, sv)
		var res *http.Response
		var err error
		sent := false // a byte of the body may have reached the backend
		if expect {
			// A final answer here came instead of a 100: the body is not
			// sent, and res.Close retires the connection.
			res, err = p.awaitContinue(w, fc, r)
		}
		if err == nil && res == nil && hasBody {
			sent = true
			var fromClient bool
			if fromClient, err = p.sendBody(fc, r); err != nil {
				if fromClient {
					// The backend holds part of a request: the connection
					// is spoiled. The failure is the client's (clientFault).
					stop()
					fc.c.Close()
					p.errorHandler(w, r, err)
					return nil
				}
				// The backend stopped taking the body: it may have
				// answered already (a 413, say) before closing.
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					if early, rerr := p.readAnswer(w, fc, r); rerr == nil {
						res, err = early, nil
						res.Close = true
					}
				}
			}
		}
		if err == nil && res == nil {
			res, err = p.readHeader(w, fc, r)
		}
		if err == nil && ctx.Err() != nil {
			stop()
			p.salvage(fc, res)
			p.modifyResponse(res) // the backend did answer
			clientGone(w, r)
			return nil
		}
		if err == nil {
			p.relay(w, fc, res, stop, sv)
			return nil
		}
		stop()
		fc.c.Close()
		fc = nil
		var nr nothingRead
		if attempt == 0 && reused && !sent && ctx.Err() == nil && errors.As(err, &nr) && retryable(nr.err) && replayable(r) {
			p.log.Debug("idle backend connection was closed; retrying on a new one", zap.Error(err))
			continue
		}
		p.errorHandler(w, r, err)
		return nil
	}
}

// awaitContinue sends the header block of a request that expects 100
// Continue and waits for the backend's answer to it, at most
// ExpectContinueTimeout: nil when the body is to be sent (the backend's
// 100, relayed to the client, or its silence), or the backend's final
// answer, to be relayed without the body; the connection then cannot carry
// another request (res.Close).
func (p *Proxy) awaitContinue(w http.ResponseWriter, fc *fastConn, r *http.Request) (*http.Response, error) {
	if err := fc.bw.Flush(); err != nil {
		return nil, err
	}
	res, err := p.answer(w, fc, r, time.Now().Add(p.transport.ExpectContinueTimeout), true)
	var nr nothingRead
	var ne net.Error
	switch {
	case errors.As(err, &nr) && errors.As(nr.err, &ne) && ne.Timeout():
		fc.setReadDeadline(time.Time{})
		return nil, nil // no word from the backend: send the body
	case res != nil:
		res.Close = true
	}
	return res, err
}

// bigBody is the body size past which the writes to the backend are
// bounded by a deadline: a smaller one fits in the sockets' buffers, even
// when the backend does not read it.
const bigBody = 64 << 10

// sendBody streams r's body to the backend after its header block, framed
// as writeRequest announced it, and flushes the request. fromClient says
// the error is the client's (reading its body failed).
func (p *Proxy) sendBody(fc *fastConn, r *http.Request) (fromClient bool, err error) {
	bp := buffers.Get().(*[]byte)
	defer buffers.Put(bp)
	buf := *bp
	bw := fc.bw
	chunked, left := r.ContentLength < 0, r.ContentLength
	// A backend that takes none of a big body for the response-header
	// timeout fails the request; the deadline moves when half of it is
	// gone, so most writes cost no deadline call.
	var wt time.Duration
	var wdl time.Time
	if (chunked || left > bigBody) && p.opts.ResponseHeaderTimeout > 0 {
		wt = p.opts.ResponseHeaderTimeout
		defer fc.setWriteDeadline(time.Time{})
	}
	for {
		n, rerr := r.Body.Read(buf)
		if n > 0 {
			if wt > 0 {
				if now := time.Now(); wdl.Sub(now) < wt/2 {
					wdl = now.Add(wt)
					fc.setWriteDeadline(wdl)
				}
			}
			if !chunked {
				if int64(n) > left {
					return true, errors.New("proxy: request body longer than its Content-Length")
				}
				left -= int64(n)
			} else {
				writeUint(bw, uint64(n), 16)
				bw.WriteString("\r\n")
			}
			_, werr := bw.Write(buf[:n])
			if chunked {
				_, werr = bw.WriteString("\r\n") // a failed write's error stays
			}
			if werr != nil {
				return false, werr
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return true, rerr
		}
	}
	if left > 0 {
		return true, io.ErrUnexpectedEOF
	}
	if chunked {
		bw.WriteString("0\r\n\r\n") // no trailers (see fastEligible)
	}
	return false, bw.Flush()
}

// headerLimit is the most a response header block may take.
func (p *Proxy) headerLimit() int64 {
	if n := p.transport.MaxResponseHeaderBytes; n > 0 {
		return n
	}
	return 10 << 20
}

// retryable: the backend closed a reused connection before answering.
func retryable(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// nothingRead: the backend sent no byte of an answer.
type nothingRead struct{ err error }

func (e nothingRead) Error() string { return e.err.Error() }
func (e nothingRead) Unwrap() error { return e.err }

// readHeader sends the buffered request and reads the answer's header
// within the response-header timeout, passing 1xx informational answers
// on to the client.
func (p *Proxy) readHeader(w http.ResponseWriter, fc *fastConn, r *http.Request) (*http.Response, error) {
	if err := fc.bw.Flush(); err != nil {
		return nil, err
	}
	return p.readAnswer(w, fc, r)
}

// readAnswer is readHeader after the request was sent.
func (p *Proxy) readAnswer(w http.ResponseWriter, fc *fastConn, r *http.Request) (*http.Response, error) {
	var dl time.Time
	if p.opts.ResponseHeaderTimeout > 0 {
		dl = time.Now().Add(p.opts.ResponseHeaderTimeout)
	}
	return p.answer(w, fc, r, dl, false)
}

// answer reads the backend's answer to r, its header by the deadline dl
// (zero: none), passing 1xx informational answers on to the client, up to
// the final answer, or with cont up to a 100 Continue (then nil, nil).
// nothingRead says that no byte of an answer came.
func (p *Proxy) answer(w http.ResponseWriter, fc *fastConn, r *http.Request, dl time.Time, cont bool) (*http.Response, error) {
	timed := !dl.IsZero()
	if timed {
		fc.setReadDeadline(dl)
	}
	fc.left = p.headerLimit()
	// Wait for the first byte apart: an io.EOF here means the backend had
	// closed the connection before it saw the request (retryable), which
	// http.ReadResponse would report as io.ErrUnexpectedEOF.
	if _, err := fc.br.Peek(1); err != nil {
		return nil, nothingRead{err}
	}
	for {
		res, err := http.ReadResponse(fc.br, r)
		if err != nil {
			return nil, err
		}
		switch {
		case res.StatusCode >= 200:
			// The body may take as long as it takes: lift the header's
			// deadline, unless the whole answer is read already (most
			// small ones), when nothing more is read on this exchange and
			// the next one sets its own deadline before it reads.
			if timed && (res.ContentLength < 0 || res.ContentLength > int64(fc.br.Buffered())) {
				fc.setReadDeadline(time.Time{})
			}
			fc.left = 1<<63 - 1
			return res, nil
		case res.StatusCode == http.StatusSwitchingProtocols:
			return nil, errors.New("backend switched protocols without an Upgrade request")
		}
		p.relayInformational(w, res)
		if cont && res.StatusCode == http.StatusContinue {
			fc.setReadDeadline(time.Time{})
			return nil, nil
		}
		fc.left = p.headerLimit()
	}
}

// relayInformational passes a 1xx answer on, as httputil.ReverseProxy
// does.
func (p *Proxy) relayInformational(w http.ResponseWriter, res *http.Response) {
	h := w.Header()
	removeHopHeaders(res.Header)
	for k, vv := range res.Header {
		h[k] = vv
	}
	w.WriteHeader(res.StatusCode)
	clear(h)
}

// removeHopHeaders removes the hop-by-hop headers of a response, and those
// its Connection header names.
func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				delete(h, http.CanonicalHeaderKey(f))
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

// relay sends the backend's answer to the client, then returns the
// connection to the pool if it can carry another request. stop ends the
// client-gone watch of serveFast.
func (p *Proxy) relay(w http.ResponseWriter, fc *fastConn, res *http.Response, stop func() bool, sv func()) {
	removeHopHeaders(res.Header)
	p.modifyResponse(res)
	h := w.Header()
	for k, vv := range res.Header {
		if prior, ok := h[k]; ok {
			vv = append(prior[:len(prior):len(prior)], vv...)
		}
		h[k] = vv
	}
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		h.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(res.StatusCode)
	flush := streaming(res)
	if flush {
		// As httputil.ReverseProxy: the header goes out at once, even if
		// the first piece of the body comes much later.
		http.NewResponseController(w).Flush()
	}
	toClient, err := copyBody(w, res.Body, flush)
	stop()
	if err != nil {
		if toClient {
			// The client failed (gone, or too slow): the backend's answer
			// may still end well within the salvage window.
			sv()
			p.salvage(fc, res)
		} else {
			fc.c.Close()
		}
		p.log.Debug("response body copy failed", zap.Error(err))
		// As httputil.ReverseProxy: all that can be done is to abort
		// the client's request, so it does not take a cut body for whole.
		panic(http.ErrAbortHandler)
	}
	p.keep(fc, res)
	if len(res.Trailer) > 0 {
		// Force chunking, so net/http does not compute a Content-Length
		// for a short body and drop the trailers.
		http.NewResponseController(w).Flush()
		if len(res.Trailer) == announced {
			for k, vv := range res.Trailer {
				h[k] = vv
			}
		} else {
			for k, vv := range res.Trailer {
				h[http.TrailerPrefix+k] = vv
			}
		}
	}
}

// keep returns fc, whose answer res was read to its end, to the pool,
// unless the backend closes it or sent bytes nobody asked for.
func (p *Proxy) keep(fc *fastConn, res *http.Response) {
	fc.finish()
	if res.Close || fc.br.Buffered() != 0 {
		fc.c.Close()
		return
	}
	p.fast.put(fc, time.Now())
}

// salvage reads and drops the answer of a request whose client went away
// (within the salvage deadline, at most salvageMax bytes), so the
// connection can carry another request; otherwise it closes it.
func (p *Proxy) salvage(fc *fastConn, res *http.Response) {
	n, err := io.CopyN(io.Discard, res.Body, salvageMax+1)
	if err != io.EOF || n > salvageMax {
		fc.c.Close()
		return
	}
	p.keep(fc, res)
}

// streaming reports whether each piece of the body is flushed at once, as
// httputil.ReverseProxy does for server-sent events and bodies of unknown
// length.
func streaming(res *http.Response) bool {
	if res.ContentLength == -1 {
		return true
	}
	ct := res.Header.Get("Content-Type")
	return len(ct) >= len("text/event-stream") && strings.EqualFold(ct[:len("text/event-stream")], "text/event-stream")
}

// copyBody copies the body to the client, flushing after each write when
// streaming. It reads to EOF, so the connection can be reused. toClient
// says that the error is the client's (a write or flush failed).
func copyBody(w http.ResponseWriter, body io.Reader, flush bool) (toClient bool, err error) {
	bp := buffers.Get().(*[]byte)
	defer buffers.Put(bp)
	buf := *bp
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return true, err
			}
			if flush {
				if err := http.NewResponseController(w).Flush(); err != nil {
					return true, err
				}
			}
		}
		if rerr == io.EOF {
			return false, nil
		}
		if rerr != nil {
			return false, rerr
		}
	}
}
