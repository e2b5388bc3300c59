package proxy

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// rawOrigin is a backend that hands each request it reads to answer,
// which writes the raw answer on c (false: hang up). It and its
// connections are closed when the test ends.
func rawOrigin(t *testing.T, answer func(c net.Conn, req *http.Request) bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil || !answer(c, req) {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
}

// TestFastPathUnsolicitedBytesOnIdleConn: bytes a backend sends on a
// connection while it sits idle in the pool (a body on a 204/304/HEAD
// answer written late, an answer longer than its Content-Length, ...)
// must not become the answer to the next request: the fast path looks at
// an idle connection before reusing it. (http.Transport's readLoop closes
// such a connection on its own schedule, so the standard path is not
// tested here.)
func TestFastPathUnsolicitedBytesOnIdleConn(t *testing.T) {
	answered := make(chan struct{})
	sendEvil, evilSent := make(chan struct{}), make(chan struct{})
	origin := rawOrigin(t, func(c net.Conn, req *http.Request) bool {
		if req.URL.Path == "/first" {
			c.Write([]byte("HTTP/1.1 204 No Content\r\n\r\n"))
			close(answered)
			<-sendEvil
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"))
			close(evilSent) // on loopback, in the proxy's socket buffer now
			return true
		}
		c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood"))
		return true
	})
	p := proxyTo(t, origin, true)
	w := httptest.NewRecorder()
	p.ServeHTTP(w, httptest.NewRequest("GET", "http://app.example.com/first", nil))
	<-answered
	if w.Code != 204 {
		t.Fatalf("first: %d", w.Code)
	}
	close(sendEvil)
	<-evilSent
	w = httptest.NewRecorder()
	p.ServeHTTP(w, httptest.NewRequest("GET", "http://app.example.com/second", nil))
	if got := w.Body.String(); got != "good" {
		t.Errorf("second request got %d %q, want the answer to itself (good)", w.Code, got)
	}
}

// TestHugeResponseHeaderIs502: a response header block larger than
// MaxResponseHeaderBytes (10 MiB by default) is answered 502 on both
// paths, never read into memory whole.
func TestHugeResponseHeaderIs502(t *testing.T) {
	big := "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 11<<20) + "\r\nContent-Length: 2\r\n\r\nok"
	sb := newScriptBackend(t, map[string]scriptAnswer{"/": {raw: big, close: true}})
	for _, fast := range []bool{true, false} {
		p := proxyTo(t, "http://"+sb.ln.Addr().String(), fast)
		w := httptest.NewRecorder()
		p.ServeHTTP(w, httptest.NewRequest("GET", "http://app.example.com/", nil))
		if w.Code != http.StatusBadGateway {
			t.Errorf("fast=%v: status %d with a %d-byte header, want 502", fast, w.Code, len(w.Header().Get("X-Big")))
		}
	}
}

// TestConnectionCannotStripTheFence: a client listing the fencing
// header in Connection must not keep the term from the backend.
func TestConnectionCannotStripTheFence(t *testing.T) {
	sb := newScriptBackend(t, map[string]scriptAnswer{"/": {raw: "HTTP/1.1 204 No Content\r\n\r\n"}})
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	for _, fast := range []bool{true, false} {
		front := frontFor(t, proxyTo(t, "http://"+sb.ln.Addr().String(), fast))
		fetch(t, client, "GET", front.URL+"/", http.Header{"Connection": {"Baton-Term"}})
		if seen := sb.last(); !strings.Contains(seen, "\nBaton-Term: 7") {
			t.Errorf("fast=%v: backend got no fencing header:\n%s", fast, seen)
		}
	}
}

// TestQueryCleanedAsReverseProxyDoes: ReverseProxy with Rewrite drops unparsable
// query parameters (';', bad %-escapes) so the proxy and the backend
// cannot read different parameters; the fast path leaves such queries to
// the standard path.
func TestQueryCleanedAsReverseProxyDoes(t *testing.T) {
	sb := newScriptBackend(t, map[string]scriptAnswer{"/": {raw: "HTTP/1.1 204 No Content\r\n\r\n"}})
	fast, std := frontFor(t, proxyTo(t, "http://"+sb.ln.Addr().String(), true)), frontFor(t, proxyTo(t, "http://"+sb.ln.Addr().String(), false))
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	for _, q := range []string{"/?a=1;b=2&c=3", "/?q=%zz&r=1"} {
		fetch(t, client, "GET", fast.URL+q, nil)
		sawFast := sb.last()
		fetch(t, client, "GET", std.URL+q, nil)
		sawStd := sb.last()
		lf, _, _ := strings.Cut(sawFast, "\n")
		ls, _, _ := strings.Cut(sawStd, "\n")
		if lf != ls {
			t.Errorf("%s: fast path sent %q, standard path %q", q, lf, ls)
		}
	}
}

// TestNoRetryAfterPartOfAnAnswer: a reused connection that fails after
// the backend already answered a 1xx (so the client got bytes) is not
// retried: the backend gets the request once and the client one 103 and a
// 502, as with http.Transport.
func TestNoRetryAfterPartOfAnAnswer(t *testing.T) {
	for _, fast := range []bool{true, false} {
		got103 := make(chan struct{}, 4)
		var mu sync.Mutex
		requests := 0
		origin := rawOrigin(t, func(c net.Conn, req *http.Request) bool {
			mu.Lock()
			requests++
			n := requests
			mu.Unlock()
			if req.URL.Path == "/warm" {
				c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
				return true
			}
			c.Write([]byte("HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"))
			if n == 2 { // the first try of /hint, on the reused connection: reset
				select {
				case <-got103:
				case <-time.After(5 * time.Second):
				}
				c.(*net.TCPConn).SetLinger(0)
				return false
			}
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
			return true
		})
		front := frontFor(t, proxyTo(t, origin, fast))
		client := &http.Client{Timeout: 5 * time.Second}
		fetch(t, client, "GET", front.URL+"/warm", nil)
		var hints int
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				hints++
				got103 <- struct{}{}
				return nil
			},
		})
		req, _ := http.NewRequestWithContext(ctx, "GET", front.URL+"/hint", nil)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		client.CloseIdleConnections()
		mu.Lock()
		n := requests
		mu.Unlock()
		if n != 2 || hints != 1 {
			t.Errorf("fast=%v: backend saw %d requests, client got %d 103s and a %d; want 2 requests, one 103 (then 502)", fast, n, hints, res.StatusCode)
		}
	}
}

// TestGoneClientCannotHangTheHandler: the client is already gone when a
// request takes a pooled connection, so the client-gone watch fires at
// once; the response-header deadline must not undo its past deadline, or
// the handler would copy a quiet stream for nobody, holding the backend
// connection and the in-flight count (WaitIdle, drains).
func TestGoneClientCannotHangTheHandler(t *testing.T) {
	for _, fast := range []bool{true, false} {
		origin := rawOrigin(t, func(c net.Conn, req *http.Request) bool {
			if req.URL.Path == "/warm" {
				c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
				return true
			}
			// A stream that has nothing to say for now.
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"))
			return true
		})
		p := proxyTo(t, origin, fast)
		stuck := 0
		for range 50 {
			p.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "http://app.example.com/warm", nil))
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // the client is gone already
			done := make(chan struct{})
			go func() {
				defer close(done)
				defer func() { recover() }() // ErrAbortHandler
				p.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "http://app.example.com/stream", nil).WithContext(ctx))
			}()
			select {
			case <-done:
			case <-time.After(200 * time.Millisecond):
				stuck++
			}
		}
		if stuck > 0 {
			t.Errorf("fast=%v: %d of 50 requests of gone clients still running after 200ms (in flight: %d)", fast, stuck, p.InFlight())
		}
	}
}

// TestIdleBackendConnsAreClosed: a connection idle for IdleConnTimeout is
// closed on both paths, also when no request comes to take it.
func TestIdleBackendConnsAreClosed(t *testing.T) {
	sb := newScriptBackend(t, map[string]scriptAnswer{"/": {raw: "HTTP/1.1 204 No Content\r\n\r\n"}})
	for _, fast := range []bool{true, false} {
		p := proxyTo(t, "http://"+sb.ln.Addr().String(), fast)
		p.transport.IdleConnTimeout = 50 * time.Millisecond
		if p.fast != nil {
			p.fast.idleTimeout = 50 * time.Millisecond
		}
		p.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "http://app.example.com/", nil))
		deadline := time.Now().Add(2 * time.Second)
		for {
			sb.mu.Lock()
			open := len(sb.open)
			sb.mu.Unlock()
			if open == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("fast=%v: idle backend connection still open 2s after a 50ms idle timeout", fast)
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		p.Close()
		waitFor(t, func() bool { sb.mu.Lock(); defer sb.mu.Unlock(); return len(sb.open) == 0 })
	}
}

// TestAccessLogSkipsInformationalAnswers: a 103 before the answer does not
// become the status in the access log.
func TestAccessLogSkipsInformationalAnswers(t *testing.T) {
	sb := newScriptBackend(t, map[string]scriptAnswer{"/": {raw: "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"}})
	for _, fast := range []bool{true, false} {
		p := proxyTo(t, "http://"+sb.ln.Addr().String(), fast)
		core, logs := observer.New(zap.InfoLevel)
		p.SetAccessLog(zap.New(core))
		front := frontFor(t, p)
		res, err := http.Get(front.URL)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		entries := logs.All()
		if len(entries) != 1 || entries[0].ContextMap()["status"] != int64(200) {
			t.Errorf("fast=%v: access log %v, want one line with status 200", fast, entries)
		}
	}
}
