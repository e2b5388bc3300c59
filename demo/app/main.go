// Command demoapp is the stateful web application that baton's demo and tests
// put behind baton: it keeps a per-session visit counter in memory (so only one
// instance may serve at a time, like the lift-and-shift apps baton is for)
// and says which instance answered and under which fencing term.
//
//	GET  /              "instance=app-a session=3f2a visits=4 term=2" (sets the session cookie)
//	GET  /healthz       200 "ok", or the status set through /control/health
//	GET  /slow?ms=N     answers after N milliseconds (drain tests)
//	GET  /bytes?n=N     answers N bytes, at most 64 MiB (slow readers, throughput)
//	GET  /control/conns "accepted=N open=M": connections since start, and now
//	GET  /control/slow?min=N&wait=D  how many /slow requests are waiting;
//	                    with min, waits up to D (at most 10s) for N of them,
//	                    then 200, or 504 if fewer came
//	POST /control/health?status=500   makes /healthz answer that status
//	GET  /ws            an upgraded connection (Upgrade: websocket) that echoes
//	                    each line prefixed with the instance name, for drain tests
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("demoapp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address to listen on")
	name := fs.String("name", "app", "instance name reported in every answer")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "demoapp: %v\n", err)
		return 1
	}
	a := newApp(*name)
	srv := &http.Server{Handler: a, ReadHeaderTimeout: 10 * time.Second, ConnState: a.connState}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stderr, "demoapp %s listening on %s\n", *name, ln.Addr())
	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "demoapp: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return 1
	}
	return 0
}

type app struct {
	name   string
	health atomic.Int64
	slowIn atomic.Int64 // /slow requests waiting
	mux    *http.ServeMux
	// Connections accepted since start, and open now.
	accepted, open atomic.Int64
	mu             sync.Mutex
	visits         map[string]int
}

func newApp(name string) *app {
	a := &app{name: name, visits: make(map[string]int)}
	a.health.Store(http.StatusOK)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.index)
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("GET /slow", a.slow)
	mux.HandleFunc("POST /control/health", a.setHealth)
	mux.HandleFunc("GET /control/slow", a.slowCount)
	mux.HandleFunc("GET /ws", a.ws)
	mux.HandleFunc("GET /bytes", a.bytes)
	mux.HandleFunc("GET /control/conns", a.connCount)
	a.mux = mux
	return a
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// connState counts the connections accepted and open.
func (a *app) connState(_ net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		a.accepted.Add(1)
		a.open.Add(1)
	case http.StateClosed, http.StateHijacked:
		a.open.Add(-1)
	}
}

func (a *app) connCount(w http.ResponseWriter, _ *http.Request) {
	fmt.Fprintf(w, "accepted=%d open=%d\n", a.accepted.Load(), a.open.Load())
}

func (a *app) index(w http.ResponseWriter, r *http.Request) {
	sid := ""
	if c, err := r.Cookie("demo_session"); err == nil && len(c.Value) <= 64 {
		sid = c.Value
	}
	if sid == "" {
		var b [4]byte
		rand.Read(b[:])
		sid = hex.EncodeToString(b[:])
		http.SetCookie(w, &http.Cookie{Name: "demo_session", Value: sid, Path: "/", HttpOnly: true})
	}
	a.mu.Lock()
	a.visits[sid]++
	n := a.visits[sid]
	a.mu.Unlock()
	w.Header().Set("X-Instance", a.name)
	fmt.Fprintf(w, "instance=%s session=%s visits=%d term=%s\n", a.name, sid, n, r.Header.Get("Baton-Term"))
}

func (a *app) healthz(w http.ResponseWriter, _ *http.Request) {
	code := int(a.health.Load())
	w.WriteHeader(code)
	fmt.Fprintf(w, "%s %d\n", a.name, code)
}

func (a *app) slow(w http.ResponseWriter, r *http.Request) {
	ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
	ms = min(max(ms, 0), 60_000)
	a.slowIn.Add(1)
	defer a.slowIn.Add(-1)
	select {
	case <-time.After(time.Duration(ms) * time.Millisecond):
	case <-r.Context().Done():
		return
	}
	w.Header().Set("X-Instance", a.name)
	fmt.Fprintf(w, "instance=%s slow=%dms term=%s\n", a.name, ms, r.Header.Get("Baton-Term"))
}

// bytes answers n bytes (query n, at most 64 MiB): a big answer for slow
// readers and throughput tests.
func (a *app) bytes(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	n = min(max(n, 0), 64<<20)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(n))
	buf := make([]byte, min(n, 32<<10))
	for i := range buf {
		buf[i] = 'x'
	}
	for n > 0 {
		k, err := w.Write(buf[:min(n, len(buf))])
		if err != nil {
			return
		}
		n -= k
	}
}

func (a *app) slowCount(w http.ResponseWriter, r *http.Request) {
	want, _ := strconv.ParseInt(r.URL.Query().Get("min"), 10, 64)
	wait, _ := time.ParseDuration(r.URL.Query().Get("wait"))
	deadline := time.Now().Add(min(wait, 10*time.Second))
	n := a.slowIn.Load()
	for n < want && time.Now().Before(deadline) && r.Context().Err() == nil {
		time.Sleep(5 * time.Millisecond)
		n = a.slowIn.Load()
	}
	if n < want {
		w.WriteHeader(http.StatusGatewayTimeout)
	}
	fmt.Fprintf(w, "%d\n", n)
}

func (a *app) setHealth(w http.ResponseWriter, r *http.Request) {
	code, err := strconv.Atoi(r.URL.Query().Get("status"))
	if err != nil || code < 100 || code > 599 {
		http.Error(w, "status must be an HTTP status code", http.StatusBadRequest)
		return
	}
	a.health.Store(int64(code))
	fmt.Fprintf(w, "healthz now answers %d\n", code)
}

// ws upgrades the connection and echoes lines. It speaks just enough of the
// upgrade handshake for a proxy to treat it as a WebSocket; the frames are
// plain lines, which is all the drain tests need.
func (a *app) ws(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		http.Error(w, "expected Upgrade: websocket", http.StatusBadRequest)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	if brw.Flush() != nil {
		return
	}
	for {
		line, err := brw.ReadString('\n')
		if err != nil {
			return
		}
		brw.WriteString(a.name + ": " + line)
		if brw.Flush() != nil {
			return
		}
	}
}
