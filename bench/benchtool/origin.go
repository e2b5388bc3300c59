//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// The origin's answers: the 13-byte body of the classic "hello world"
// benchmarks and a 64 KiB one; POST /post answers the length of the body
// it read.
var (
	smallBody = []byte("Hello, World\n")
	largeBody = bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16)
)

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// serveOrigin serves the benchmark origin until ctx is done. It is a plain
// net/http server: what an app behind baton would typically be.
func serveOrigin(ctx context.Context, listen string, stderr io.Writer) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", listen, err)
	}
	smallLen, largeLen := strconv.Itoa(len(smallBody)), strconv.Itoa(len(largeBody))
	mux := http.NewServeMux()
	answer := func(body []byte, n string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h["Content-Type"] = []string{"text/plain; charset=utf-8"}
			h["Content-Length"] = []string{n}
			w.Write(body)
		}
	}
	mux.Handle("GET /small", answer(smallBody, smallLen))
	mux.Handle("GET /large", answer(largeBody, largeLen))
	mux.Handle("GET /healthz", answer([]byte("ok\n"), "3"))
	// POST /post reads the body to its end and answers its length.
	mux.HandleFunc("POST /post", func(w http.ResponseWriter, r *http.Request) {
		bp := copyBufs.Get().(*[]byte)
		n, err := io.CopyBuffer(io.Discard, r.Body, *bp)
		copyBufs.Put(bp)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h := w.Header()
		h["Content-Type"] = []string{"text/plain; charset=utf-8"}
		b := strconv.AppendInt(make([]byte, 0, 24), n, 10)
		b = append(b, '\n')
		h["Content-Length"] = []string{strconv.Itoa(len(b))}
		w.Write(b)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stderr, "origin listening on %s\n", ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
