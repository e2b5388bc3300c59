package proxy

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

// h2Front serves p over TLS with HTTP/2 and counts the client connections.
func h2Front(t testing.TB, p http.Handler) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	dir := t.TempDir()
	certs, err := NewStaticCerts([]CertPair{writePair(t, dir, "a", 1, "app.example.com")}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int32
	front := httptest.NewUnstartedServer(nil)
	front.Config = NewServer(p, zap.NewNop())
	front.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	front.TLS = TLSConfig("1.2", certs.GetCertificate)
	front.EnableHTTP2 = true
	front.StartTLS()
	t.Cleanup(front.Close)
	return front, &conns
}

func h2Client() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		ForceAttemptHTTP2: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, ServerName: "app.example.com"},
	}}
}

// TestHTTP2CancelledStreamKeepsTheConnection: a browser that cancels one
// request (navigation, an aborted fetch) resets that stream only; the
// proxy must not answer it with "Connection: close", which Go's HTTP/2
// server turns into a GOAWAY for every stream of the connection.
func TestHTTP2CancelledStreamKeepsTheConnection(t *testing.T) {
	started := make(chan struct{}, 1)
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-r.Context().Done()
			return
		}
		io.WriteString(w, "ok")
	})
	for _, fast := range []bool{true, false} {
		origin := httptest.NewServer(backend)
		t.Cleanup(origin.Close)
		p := proxyTo(t, origin.URL, fast)
		front, conns := h2Front(t, p)
		c := h2Client()
		get := func(ctx context.Context, path string) (*http.Response, error) {
			req, _ := http.NewRequestWithContext(ctx, "GET", front.URL+path, nil)
			return c.Do(req)
		}
		res, err := get(t.Context(), "/")
		if err != nil || res.ProtoMajor != 2 {
			t.Fatalf("fast=%v: first request: %v %v", fast, res, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()

		ctx, cancel := context.WithCancel(t.Context())
		go func() { <-started; time.Sleep(50 * time.Millisecond); cancel() }()
		if _, err := get(ctx, "/slow"); err == nil {
			t.Fatalf("fast=%v: the cancelled request succeeded", fast)
		}
		time.Sleep(200 * time.Millisecond) // time for a GOAWAY to arrive, if one is sent

		var reused bool
		trace := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }})
		res, err = get(trace, "/")
		if err != nil {
			t.Fatalf("fast=%v: request after the cancel: %v", fast, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		c.CloseIdleConnections()
		if n := conns.Load(); n != 1 || !reused {
			t.Errorf("fast=%v: %d client connections (reused %v) after one cancelled stream, want the first one kept", fast, n, reused)
		}
	}
}

// TestQueryThatWouldBreakTheRequestLine: an HTTP/2 client can put a space
// (or a '#') in the query of its :path; copied into the backend's HTTP/1.1
// request line it would add tokens to it ("GET /x?a b HTTP/1.1 HTTP/1.1").
// Both paths answer 400 and send the backend nothing.
func TestQueryThatWouldBreakTheRequestLine(t *testing.T) {
	sb := newScriptBackend(t, map[string]scriptAnswer{"/x": {raw: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"}})
	for _, fast := range []bool{true, false} {
		p := proxyTo(t, "http://"+sb.ln.Addr().String(), fast)
		front, _ := h2Front(t, p)
		c := h2Client()
		for _, q := range []string{"a b HTTP/1.1", "a#b", "ok=1"} {
			req, _ := http.NewRequest("GET", front.URL+"/x", nil)
			req.URL.RawQuery = q
			res, err := c.Do(req)
			if err != nil {
				t.Fatalf("fast=%v %q: %v", fast, q, err)
			}
			res.Body.Close()
			want := http.StatusBadRequest
			if q == "ok=1" {
				want = http.StatusOK
			}
			if res.StatusCode != want {
				t.Errorf("fast=%v: query %q: %d, want %d (backend saw %q)", fast, q, res.StatusCode, want, sb.last())
			}
		}
		c.CloseIdleConnections()
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if len(sb.seen) != 2 {
		t.Errorf("backend saw %d requests, want the 2 good ones: %q", len(sb.seen), sb.seen)
	}
}
