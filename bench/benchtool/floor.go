//go:build linux

package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"time"
)

// The Go floor: the least a reverse proxy built on net/http's server can
// do per request, measured beside baton in the keep-alive HTTP/1.1 blocks
// and at the fixed rate. It has net/http's server on the client side (as
// baton) and, on the backend side, one write of the request and one
// http.ReadResponse on a pooled keep-alive connection (as baton's fast
// path), and nothing else: no fence, no X-Forwarded-*, no hop-by-hop
// screening, no deadlines, no client-gone watch, no check of a pooled
// connection, no accounting, no retry. It is not a proxy to run (a
// backend that closes an idle connection fails the next request on it,
// and only bodies with a Content-Length are forwarded); it is the cost
// below which no net/http-based proxy goes, so that the distance from
// baton to HAProxy splits into what baton's own work costs (baton/floor)
// and what the platform costs (floor/HAProxy).

type floorConn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

type floorProxy struct {
	backend string
	idle    chan *floorConn
}

func (p *floorProxy) conn() (*floorConn, error) {
	select {
	case fc := <-p.idle:
		return fc, nil
	default:
	}
	c, err := net.Dial("tcp", p.backend)
	if err != nil {
		return nil, err
	}
	return &floorConn{c: c, br: bufio.NewReaderSize(c, 4<<10), bw: bufio.NewWriterSize(c, 4<<10)}, nil
}

func (p *floorProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength < 0 {
		http.Error(w, "the floor proxy forwards only bodies with a Content-Length", http.StatusNotImplemented)
		return
	}
	fc, err := p.conn()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	bw := fc.bw
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(r.RequestURI)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(r.Host)
	bw.WriteString("\r\n")
	for k, vv := range r.Header {
		if k == "Connection" {
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	bw.WriteString("\r\n")
	if r.ContentLength > 0 {
		bp := copyBufs.Get().(*[]byte)
		_, err = io.CopyBuffer(bw, io.LimitReader(r.Body, r.ContentLength), *bp)
		copyBufs.Put(bp)
	}
	if err == nil {
		err = bw.Flush()
	}
	var res *http.Response
	if err == nil {
		res, err = http.ReadResponse(fc.br, r)
	}
	if err != nil {
		fc.c.Close()
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	h := w.Header()
	for k, vv := range res.Header {
		h[k] = vv
	}
	w.WriteHeader(res.StatusCode)
	bp := copyBufs.Get().(*[]byte)
	_, err = io.CopyBuffer(w, res.Body, *bp)
	copyBufs.Put(bp)
	if err != nil || res.Close {
		fc.c.Close()
		return
	}
	select {
	case p.idle <- fc:
	default:
		fc.c.Close()
	}
}

// serveFloor runs the floor proxy on listen (plain HTTP/1.1) and, with a
// certificate, on tlsListen (HTTPS with HTTP/2, net/http's defaults),
// forwarding to backend, until ctx is done, with baton's default GC
// setting (runtime.gc_percent = 400), so that the two differ in code only.
func serveFloor(ctx context.Context, listen, tlsListen, crt, key, backend string, stderr io.Writer) error {
	debug.SetGCPercent(400)
	p := &floorProxy{backend: backend, idle: make(chan *floorConn, 512)}
	var srvs []*http.Server
	errc := make(chan error, 2)
	serve := func(addr string, tlsConf *tls.Config) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", addr, err)
		}
		srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute, TLSConfig: tlsConf}
		srvs = append(srvs, srv)
		go func() {
			if tlsConf != nil {
				errc <- srv.ServeTLS(ln, "", "")
			} else {
				errc <- srv.Serve(ln)
			}
		}()
		fmt.Fprintf(stderr, "floor proxy listening on %s (TLS %t), backend %s\n", ln.Addr(), tlsConf != nil, backend)
		return nil
	}
	err := serve(listen, nil)
	if err == nil && tlsListen != "" {
		var cert tls.Certificate
		if cert, err = tls.LoadX509KeyPair(crt, key); err == nil {
			err = serve(tlsListen, &tls.Config{Certificates: []tls.Certificate{cert}})
		}
	}
	if err == nil {
		select {
		case err = <-errc:
		case <-ctx.Done():
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, srv := range srvs {
		if serr := srv.Shutdown(sctx); serr != nil {
			srv.Close()
		}
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
