//go:build leanh1

package proxy

// A bench-only prototype: a lean HTTP/1.1 server for the plain-HTTP
// listener, behind the same http.Handler contract, built only with -tags
// leanh1 (bench/bench.sh builds bin/baton-lean with it and measures it as
// the "lean" variant; `go test -tags leanh1 ./proxy/` runs the
// differential and smuggling suites through it). It is not in the product:
// bench/README.md ("The HTTP/1.1 server") records what it saved, what it
// does not do that net/http's server does, and why baton keeps net/http.
//
// What it keeps: the request is parsed by the standard library's parser
// (http.ReadRequest's, reached by go:linkname; request line, header block, Content-Length and
// Transfer-Encoding rules) and checked as net/http's server checks it (one
// valid Host, valid header names and values, HTTP/1.x only); the header
// block is bounded and read under ReadHeaderTimeout; IdleTimeout; Flush,
// Hijack and deadlines for http.ResponseController; ConnState for the
// connection limiter; Connection: close from the handler or the client;
// HTTP/1.0; 100-continue; trailers; Content-Length for short answers and
// chunking for the rest; Shutdown through RegisterOnShutdown.
//
// What it leaves out: no background read while the handler runs (a client
// that goes away is noticed only when a write fails, so its request
// context is not cancelled), no SetKeepAlivesEnabled (the drain cannot turn
// keep-alives off), no Content-Type sniffing beyond DetectContentType on
// the first write, no pipelining beyond what the buffered reader holds,
// no h2c.

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "unsafe" // for go:linkname

	"golang.org/x/net/http/httpguts"
)

// readRequest is net/http's request parser as its server calls it:
// http.ReadRequest without the deletion of the Host header, which the
// checks below need (two Host headers are refused).
//
//go:linkname readRequest net/http.readRequest
func readRequest(b *bufio.Reader) (*http.Request, error)

// ServeLean serves srv.Handler on ln with the lean HTTP/1.1 server until
// srv.Shutdown or srv.Close (which it hears through RegisterOnShutdown
// only for Shutdown) closes ln.
func ServeLean(srv *http.Server, ln net.Listener) error {
	ls := &leanServer{srv: srv, ln: ln, conns: map[*leanConn]struct{}{}}
	srv.RegisterOnShutdown(ls.shutdown)
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			ls.mu.Lock()
			closing := ls.closing
			ls.mu.Unlock()
			if closing {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		lc := &leanConn{s: ls, c: c, remote: c.RemoteAddr().String()}
		ls.mu.Lock()
		ls.conns[lc] = struct{}{}
		ls.mu.Unlock()
		ls.setState(lc, http.StateNew)
		go lc.serve()
	}
}

type leanServer struct {
	srv *http.Server
	ln  net.Listener

	mu      sync.Mutex
	conns   map[*leanConn]struct{}
	closing bool
}

func (ls *leanServer) setState(lc *leanConn, st http.ConnState) {
	lc.idle.Store(st == http.StateIdle || st == http.StateNew)
	if ls.srv.ConnState != nil {
		ls.srv.ConnState(lc.c, st)
	}
}

// shutdown closes the listener and the idle connections; busy ones close
// after their answer.
func (ls *leanServer) shutdown() {
	ls.mu.Lock()
	ls.closing = true
	for lc := range ls.conns {
		if lc.idle.Load() {
			lc.c.Close()
		}
	}
	ls.mu.Unlock()
	ls.ln.Close()
}

func (ls *leanServer) isClosing() bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.closing
}

// leanConn is one client connection.
type leanConn struct {
	s      *leanServer
	c      net.Conn
	remote string
	lr     io.LimitedReader
	br     *bufio.Reader
	bw     *bufio.Writer
	idle   atomic.Bool
	date   [29]byte
	dateAt int64

	hijacked bool
}

var leanReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
var leanWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}

func (lc *leanConn) close() {
	lc.s.mu.Lock()
	delete(lc.s.conns, lc)
	lc.s.mu.Unlock()
	if lc.hijacked {
		return
	}
	lc.c.Close()
	lc.s.setState(lc, http.StateClosed)
	lc.br.Reset(nil)
	leanReaders.Put(lc.br)
	lc.bw.Reset(nil)
	leanWriters.Put(lc.bw)
}

func (lc *leanConn) serve() {
	srv := lc.s.srv
	lc.lr.R = lc.c
	lc.br = leanReaders.Get().(*bufio.Reader)
	lc.br.Reset(&lc.lr)
	lc.bw = leanWriters.Get().(*bufio.Writer)
	lc.bw.Reset(lc.c)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx = context.WithValue(ctx, http.LocalAddrContextKey, lc.c.LocalAddr())
	defer func() {
		if v := recover(); v != nil && v != http.ErrAbortHandler {
			srv.ErrorLog.Printf("http: panic serving %v: %v", lc.remote, v)
		}
		lc.close()
	}()
	maxHeader := int64(srv.MaxHeaderBytes)
	if maxHeader <= 0 {
		maxHeader = http.DefaultMaxHeaderBytes
	}
	first := true
	for {
		if !first && srv.IdleTimeout > 0 {
			lc.c.SetReadDeadline(time.Now().Add(srv.IdleTimeout))
			if _, err := lc.br.Peek(1); err != nil {
				return
			}
		}
		first = false
		if srv.ReadHeaderTimeout > 0 {
			lc.c.SetReadDeadline(time.Now().Add(srv.ReadHeaderTimeout))
		}
		lc.lr.N = maxHeader + 4096 // as net/http: slack for the request line
		req, err := readRequest(lc.br)
		if err != nil {
			if lc.lr.N <= 0 {
				lc.badRequest(http.StatusRequestHeaderFieldsTooLarge, "Request Header Fields Too Large")
			} else if err != io.EOF && !errors.Is(err, net.ErrClosed) {
				var ne net.Error
				if !errors.As(err, &ne) {
					lc.badRequest(http.StatusBadRequest, "Bad Request")
				}
			}
			return
		}
		lc.lr.N = 1<<63 - 1
		lc.s.setState(lc, http.StateActive)
		lc.c.SetReadDeadline(time.Time{})
		if code, msg := leanCheck(req); code != 0 {
			lc.badRequest(code, msg)
			return
		}
		delete(req.Header, "Host")
		req.RemoteAddr = lc.remote
		req = req.WithContext(ctx)
		w := &leanResponse{lc: lc, req: req, hdr: make(http.Header), cl: -1}
		if req.Header.Get("Expect") != "" {
			if !strings.EqualFold(req.Header.Get("Expect"), "100-continue") {
				w.closeAfter = true
				w.hdr.Set("Connection", "close")
				w.WriteHeader(http.StatusExpectationFailed)
				w.finish()
				return
			}
			if req.ContentLength != 0 {
				req.Body = &continueBody{ReadCloser: req.Body, w: w}
			}
		}
		w.closeAfter = req.Close || lc.s.isClosing()
		srv.Handler.ServeHTTP(w, req)
		if lc.hijacked {
			return
		}
		if !w.finish() || w.closeAfter {
			return
		}
		// The rest of the request body, if the handler left some.
		if req.Body != nil && req.Body != http.NoBody {
			if n, err := io.CopyN(io.Discard, req.Body, 256<<10); err != io.EOF || n > 256<<10 {
				return
			}
		}
		lc.s.setState(lc, http.StateIdle)
		if lc.s.isClosing() {
			return
		}
	}
}

// leanCheck is what net/http's server checks of a request beyond
// http.ReadRequest.
func leanCheck(req *http.Request) (int, string) {
	if req.ProtoMajor != 1 {
		return http.StatusHTTPVersionNotSupported, "HTTP Version Not Supported"
	}
	hosts, haveHost := req.Header["Host"]
	switch {
	case req.ProtoAtLeast(1, 1) && (!haveHost || len(hosts) == 0) && req.Method != http.MethodConnect:
		return http.StatusBadRequest, "Bad Request: missing required Host header"
	case len(hosts) > 1:
		return http.StatusBadRequest, "Bad Request: too many Host headers"
	case len(hosts) == 1 && !httpguts.ValidHostHeader(hosts[0]):
		return http.StatusBadRequest, "Bad Request: malformed Host header"
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return http.StatusBadRequest, "Bad Request: invalid header name"
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return http.StatusBadRequest, "Bad Request: invalid header value"
			}
		}
	}
	return 0, ""
}

func (lc *leanConn) badRequest(code int, msg string) {
	lc.bw.WriteString("HTTP/1.1 " + strconv.Itoa(code) + " " + http.StatusText(code) +
		"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n" + msg)
	lc.bw.Flush()
}

// httpDate is the Date header's value, computed once a second.
func (lc *leanConn) httpDate(now time.Time) []byte {
	if s := now.Unix(); s != lc.dateAt {
		lc.dateAt = s
		now.UTC().AppendFormat(lc.date[:0], http.TimeFormat)
	}
	return lc.date[:]
}

// continueBody sends 100 Continue before the first read of the body.
type continueBody struct {
	io.ReadCloser
	w    *leanResponse
	sent bool
}

func (b *continueBody) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		if !b.w.wroteHeader {
			b.w.lc.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			b.w.lc.bw.Flush()
		}
	}
	return b.ReadCloser.Read(p)
}

// leanResponse is the http.ResponseWriter of one request.
type leanResponse struct {
	lc          *leanConn
	req         *http.Request
	hdr         http.Header
	status      int
	wroteHeader bool // the status was set (200 or WriteHeader's)
	sentHeader  bool // the header block is in lc.bw
	chunked     bool
	closeAfter  bool
	cl          int64 // declared Content-Length; -1: none
	written     int64
	body        []byte // written before the header went out (a short answer)
	failed      error
}

func (w *leanResponse) Header() http.Header { return w.hdr }

func (w *leanResponse) WriteHeader(code int) {
	if w.wroteHeader || w.lc.hijacked {
		return
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		bw := w.lc.bw
		bw.WriteString("HTTP/1.1 " + strconv.Itoa(code) + " " + http.StatusText(code) + "\r\n")
		w.hdr.Write(bw)
		bw.WriteString("\r\n")
		bw.Flush()
		return
	}
	w.wroteHeader, w.status = true, code
	if v := w.hdr.Get("Content-Length"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			w.cl = n
		} else {
			w.hdr.Del("Content-Length")
		}
	}
}

func bodyAllowed(status int) bool {
	return !(status >= 100 && status <= 199 || status == http.StatusNoContent || status == http.StatusNotModified)
}

// sendHeader puts the header block into lc.bw. known says the body is
// complete (w.body), so its length can be sent.
func (w *leanResponse) sendHeader(known bool) {
	w.sentHeader = true
	h := w.hdr
	if known && w.cl < 0 && bodyAllowed(w.status) && w.req.Method != http.MethodHead {
		h["Content-Length"] = []string{strconv.Itoa(len(w.body))}
	} else if w.cl < 0 && bodyAllowed(w.status) && w.req.Method != http.MethodHead {
		if w.req.ProtoAtLeast(1, 1) {
			w.chunked = true
		} else {
			w.closeAfter = true
		}
	}
	if _, ok := h["Trailer"]; ok && w.req.ProtoAtLeast(1, 1) && bodyAllowed(w.status) && w.req.Method != http.MethodHead {
		w.chunked = true
		delete(h, "Content-Length")
	}
	if len(w.body) > 0 {
		if _, ok := h["Content-Type"]; !ok {
			h["Content-Type"] = []string{http.DetectContentType(w.body)}
		}
	}
	if cv := h["Connection"]; len(cv) > 0 && httpguts.HeaderValuesContainsToken(cv, "close") {
		w.closeAfter = true
	}
	if w.closeAfter && len(h["Connection"]) == 0 {
		h["Connection"] = []string{"close"}
	}
	bw := w.lc.bw
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(strconv.Itoa(w.status))
	bw.WriteByte(' ')
	bw.WriteString(http.StatusText(w.status))
	bw.WriteString("\r\nDate: ")
	bw.Write(w.lc.httpDate(time.Now()))
	bw.WriteString("\r\n")
	for k, vv := range h {
		if k == "Date" || strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		if w.chunked && k == "Content-Length" {
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	if w.chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	bw.WriteString("\r\n")
}

func (w *leanResponse) Write(b []byte) (int, error) {
	if w.lc.hijacked {
		return 0, http.ErrHijacked
	}
	if w.failed != nil {
		return 0, w.failed
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.req.Method == http.MethodHead {
		return len(b), nil
	}
	if !w.sentHeader {
		if w.cl < 0 && len(w.body)+len(b) <= 2048 {
			w.body = append(w.body, b...)
			w.written += int64(len(b))
			return len(b), nil
		}
		w.sendHeader(false)
		if len(w.body) > 0 {
			if err := w.writeBody(w.body); err != nil {
				return 0, err
			}
			w.body = nil
		}
	}
	if w.cl >= 0 && w.written+int64(len(b)) > w.cl {
		return 0, http.ErrContentLength
	}
	if err := w.writeBody(b); err != nil {
		return 0, err
	}
	w.written += int64(len(b))
	return len(b), nil
}

func (w *leanResponse) writeBody(b []byte) error {
	bw := w.lc.bw
	if w.chunked {
		bw.WriteString(strconv.FormatInt(int64(len(b)), 16))
		bw.WriteString("\r\n")
	}
	_, err := bw.Write(b)
	if w.chunked {
		_, err = bw.WriteString("\r\n")
	}
	if err != nil {
		w.failed = err
	}
	return err
}

// finish ends the answer and reports whether the connection may carry
// another request.
func (w *leanResponse) finish() bool {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.sentHeader {
		w.sendHeader(true)
		if len(w.body) > 0 {
			w.writeBody(w.body)
		}
	}
	bw := w.lc.bw
	if w.chunked {
		bw.WriteString("0\r\n")
		for k, vv := range w.hdr {
			tk, prefixed := strings.CutPrefix(k, http.TrailerPrefix)
			if !prefixed && !w.announced(k) {
				continue
			}
			for _, v := range vv {
				bw.WriteString(tk)
				bw.WriteString(": ")
				bw.WriteString(v)
				bw.WriteString("\r\n")
			}
		}
		bw.WriteString("\r\n")
	}
	if err := bw.Flush(); err != nil || w.failed != nil {
		return false
	}
	return w.cl < 0 || w.cl == w.written || w.req.Method == http.MethodHead
}

func (w *leanResponse) announced(k string) bool {
	for _, v := range w.hdr["Trailer"] {
		for f := range strings.SplitSeq(v, ",") {
			if http.CanonicalHeaderKey(strings.TrimSpace(f)) == k {
				return true
			}
		}
	}
	return false
}

// Flush sends what was written so far.
func (w *leanResponse) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.sentHeader {
		w.sendHeader(false)
		if len(w.body) > 0 {
			if err := w.writeBody(w.body); err != nil {
				return err
			}
			w.body = nil
		}
	}
	return w.lc.bw.Flush()
}

func (w *leanResponse) Flush() { w.FlushError() }

func (w *leanResponse) SetReadDeadline(t time.Time) error  { return w.lc.c.SetReadDeadline(t) }
func (w *leanResponse) SetWriteDeadline(t time.Time) error { return w.lc.c.SetWriteDeadline(t) }

// Hijack hands the connection over (WebSocket).
func (w *leanResponse) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.lc.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.sentHeader {
		w.lc.bw.Flush()
	}
	w.lc.hijacked = true
	w.lc.s.setState(w.lc, http.StateHijacked)
	return w.lc.c, bufio.NewReadWriter(w.lc.br, w.lc.bw), nil
}
