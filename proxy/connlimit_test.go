package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// limitedServer serves h on a loopback listener capped at max connections.
func limitedServer(t *testing.T, max int, h http.Handler) (*ConnLimiter, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := NewConnLimiter(max, zap.NewNop())
	srv := NewServer(h, zap.NewNop())
	srv.ConnState = lim.ConnState
	go srv.Serve(lim.Listener(ln))
	t.Cleanup(func() { srv.Close() })
	return lim, ln.Addr().String()
}

// keepAlive sends one request on a new connection and leaves it open.
func keepAlive(t *testing.T, addr, path string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
	return c, bufio.NewReader(c)
}

// idleConns counts the connections the limiter would close to make room.
func idleConns(lim *ConnLimiter) int {
	lim.mu.Lock()
	defer lim.mu.Unlock()
	n := 0
	for c := range lim.conns {
		if c.idleSince.Load() != 0 {
			n++
		}
	}
	return n
}

func readAnswer(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return string(b)
}

// TestConnLimiter: at the cap, an idle keep-alive connection makes room
// for a new one; with every connection busy, a new one waits until one
// ends; the count goes back to zero.
func TestConnLimiter(t *testing.T) {
	release := make(chan struct{})
	lim, addr := limitedServer(t, 3, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			<-release
		}
		io.WriteString(w, "ok"+r.URL.Path)
	}))
	idleCount := func() int { return idleConns(lim) }
	var idle []net.Conn
	for i := range 3 {
		c, br := keepAlive(t, addr, "/")
		if got := readAnswer(t, br); got != "ok/" {
			t.Fatalf("answer %q", got)
		}
		// The server marks it idle after the answer went out: wait, so
		// the order of going idle is the order here.
		waitUntil(t, "idle", func() bool { return idleCount() == i+1 })
		idle = append(idle, c)
	}
	waitUntil(t, "3 open", func() bool { return lim.Open() == 3 })
	// A fourth client is served: the longest-idle connection was closed.
	_, br := keepAlive(t, addr, "/fourth")
	if got := readAnswer(t, br); got != "ok/fourth" {
		t.Fatalf("fourth client: %q", got)
	}
	if lim.IdleClosed() != 1 || lim.Open() != 3 {
		t.Errorf("idle closed %d, open %d; want 1 and 3", lim.IdleClosed(), lim.Open())
	}
	idle[0].SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := idle[0].Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("the longest-idle connection was not the one closed: %v", err)
	}

	// Every slot busy: a new client waits until a request ends.
	for _, c := range idle[1:] {
		c.Close()
	}
	waitUntil(t, "one open", func() bool { return lim.Open() == 1 })
	var busy []*bufio.Reader
	for range 2 {
		_, br := keepAlive(t, addr, "/hold")
		busy = append(busy, br)
	}
	waitUntil(t, "3 open", func() bool { return lim.Open() == 3 })
	// The fourth-client connection from before is idle: it goes first.
	_, late := keepAlive(t, addr, "/late")
	if got := readAnswer(t, late); got != "ok/late" {
		t.Fatalf("late client: %q", got)
	}
	waitUntil(t, "the late one idle", func() bool { return idleCount() == 1 })
	c, wait := keepAlive(t, addr, "/waiting") // the late one is idle now: closed for this one
	_ = c
	if got := readAnswer(t, wait); got != "ok/waiting" {
		t.Fatalf("waiting client: %q", got)
	}
	close(release)
	for _, br := range busy {
		if got := readAnswer(t, br); !strings.HasPrefix(got, "ok/hold") {
			t.Errorf("held request: %q", got)
		}
	}
}

// TestConnLimiterWaitsWhenAllBusy: no idle connection to close: Accept
// waits, and the new client is served once a connection ends.
func TestConnLimiterWaitsWhenAllBusy(t *testing.T) {
	release := make(chan struct{})
	lim, addr := limitedServer(t, 2, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			<-release
			w.Header().Set("Connection", "close")
		}
		io.WriteString(w, "ok"+r.URL.Path)
	}))
	_, a := keepAlive(t, addr, "/hold")
	_, b := keepAlive(t, addr, "/hold")
	waitUntil(t, "2 open", func() bool { return lim.Open() == 2 })
	_, c := keepAlive(t, addr, "/third")
	got := make(chan string, 1)
	go func() {
		res, err := http.ReadResponse(c, nil)
		if err != nil {
			got <- err.Error()
			return
		}
		body, _ := io.ReadAll(res.Body)
		got <- string(body)
	}()
	select {
	case g := <-got:
		t.Fatalf("third client answered past the cap: %q", g)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	readAnswer(t, a)
	readAnswer(t, b)
	select {
	case g := <-got:
		if g != "ok/third" {
			t.Errorf("third client: %q", g)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("third client never served after the others closed")
	}
}

// TestConnLimiterOverTLS: the server hands ConnState the TLS connection;
// the limiter still finds which one is idle and makes room with it.
func TestConnLimiterOverTLS(t *testing.T) {
	lim := NewConnLimiter(1, zap.NewNop())
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	srv.Listener = lim.Listener(srv.Listener)
	srv.Config.ConnState = lim.ConnState
	srv.StartTLS()
	t.Cleanup(srv.Close)
	get := func(c *http.Client) {
		t.Helper()
		res, err := c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(res.Body)
		res.Body.Close()
	}
	first := srv.Client()
	get(first)
	waitUntil(t, "the first connection idle", func() bool { return idleConns(lim) == 1 })
	second := &http.Client{Transport: first.Transport.(*http.Transport).Clone(), Timeout: 10 * time.Second}
	t.Cleanup(second.CloseIdleConnections)
	get(second)
	if lim.IdleClosed() != 1 || lim.Open() != 1 {
		t.Errorf("idle closed %d, open %d; want 1 and 1", lim.IdleClosed(), lim.Open())
	}
}
