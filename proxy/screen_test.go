package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawHTTP1 sends raw on a new connection to addr and reads one answer.
func rawHTTP1(t *testing.T, addr, raw string, closeAfter bool) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, raw)
	if closeAfter {
		conn.(*net.TCPConn).CloseWrite()
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", raw, err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

// TestClientBodyFaultIsNotTheBackends: a POST whose chunked body is
// malformed is answered 400, not 502, and is not counted against the
// backend (40 of them made a node unhealthy in 0.5 s), on the local path
// and when a standby forwards it; so is a body the client cut short.
func TestClientBodyFaultIsNotTheBackends(t *testing.T) {
	var seen atomic.Int32
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		io.Copy(io.Discard, r.Body)
	})
	p, _, front, obs := newTestProxy(t, app, nil)
	addr := strings.TrimPrefix(front.URL, "http://")
	badChunk := "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n"
	for range 40 {
		if res := rawHTTP1(t, addr, badChunk, false); res.StatusCode != http.StatusBadRequest {
			t.Fatalf("malformed chunk: %d, want 400", res.StatusCode)
		}
	}
	// Content-Length 10, 5 bytes, then the client closes its side.
	res := rawHTTP1(t, addr, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello", true)
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("body cut short by the client: %d, want 400", res.StatusCode)
	}
	obs.mu.Lock()
	errs, done := obs.errs, append([]int(nil), obs.done...)
	obs.mu.Unlock()
	if errs != 0 {
		t.Errorf("%d client faults counted as backend errors; statuses %v", errs, done)
	}
	for _, c := range done {
		if c >= 500 {
			t.Errorf("observer told status %d for a client fault", c)
		}
	}
	if c := p.StatusCounts()[PathLocal]; c[5] != 0 || c[4] != 41 {
		t.Errorf("local status classes %v, want 41 4xx and no 5xx", c)
	}

	// The same through a standby: 400, not the 503 of a failed forward.
	a := newTestNode(t, "a", StandbyForward, time.Second)
	a.leader.set(front.URL)
	if res := rawHTTP1(t, strings.TrimPrefix(a.front.URL, "http://"), badChunk, false); res.StatusCode != http.StatusBadRequest {
		t.Errorf("malformed chunk through a standby: %d, want 400", res.StatusCode)
	}
}

// h2Raw opens an HTTP/2 connection to addr (TLS, ALPN h2) and sends one
// request with exactly the given header fields, pseudo-headers included,
// as a client that does not check them would; it returns the :status.
func h2Raw(t *testing.T, addr string, fields [][2]string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, http2.ClientPreface)
	fr := http2.NewFramer(conn, conn)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.WriteSettings()
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, f := range fields {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: buf.Bytes(), EndStream: true, EndHeaders: true})
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading frames: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			return f.PseudoValue("status")
		case *http2.RSTStreamFrame:
			return "RST " + f.ErrCode.String()
		case *http2.GoAwayFrame:
			if f.ErrCode != http2.ErrCodeNo {
				return "GOAWAY " + f.ErrCode.String()
			}
		}
	}
}

// TestHTTP2MethodAndAuthorityChecked: what net/http's HTTP/1 server
// refuses (a method that is not a token, a Host with '/', '?' or a tab)
// is refused over HTTP/2 too, with 400, and never reaches the app; a
// normal request on the same path works.
func TestHTTP2MethodAndAuthorityChecked(t *testing.T) {
	var seen atomic.Int32
	p, _, _, obs := newTestProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen.Add(1) }), nil)
	front, _ := h2Front(t, p)
	addr := strings.TrimPrefix(front.URL, "https://")
	req := func(method, authority string) [][2]string {
		return [][2]string{{":method", method}, {":scheme", "https"}, {":authority", authority}, {":path", "/x"}}
	}
	if got := h2Raw(t, addr, req("GET", "app.example.com")); got != "200" || seen.Load() != 1 {
		t.Fatalf("a valid request: %s (app saw %d)", got, seen.Load())
	}
	for _, tc := range []struct{ method, authority string }{
		{"G(T", "app.example.com"},
		{"GE T", "app.example.com"},
		{"GET", "a.example/evil"},
		{"GET", "a?x=1"},
		{"GET", "a\tb"},
	} {
		got := h2Raw(t, addr, req(tc.method, tc.authority))
		if got != "400" && !strings.HasPrefix(got, "RST") {
			t.Errorf("method %q authority %q: %s, want 400 (or a reset stream)", tc.method, tc.authority, got)
		}
	}
	if seen.Load() != 1 {
		t.Errorf("the app saw %d requests, want only the valid one", seen.Load())
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.errs != 0 {
		t.Errorf("%d refused requests counted against the backend", obs.errs)
	}
}

// TestOnlyAllowedUpgradesAreTunnelled: "Upgrade: h2c" (HTTP/2 inside an
// upgraded HTTP/1 connection, whose streams the fence would never see) is
// removed, with HTTP2-Settings, and the request is served as a plain one;
// WebSocket still upgrades (TestWebSocketUpgrade), and a protocol the
// configuration allows does too.
func TestOnlyAllowedUpgradesAreTunnelled(t *testing.T) {
	got := make(chan http.Header, 1)
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		if up := r.Header.Get("Upgrade"); up != "" {
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: " + up + "\r\nConnection: Upgrade\r\n\r\n")
			brw.Flush()
			return
		}
		io.WriteString(w, "plain")
	})
	for _, tc := range []struct {
		name    string
		allowed []string
		upgrade string
		want    int
	}{
		{"h2c by default", nil, "h2c", http.StatusOK},
		{"websocket and h2c", nil, "websocket, h2c", http.StatusOK},
		{"websocket", nil, "websocket", http.StatusSwitchingProtocols},
		{"WebSocket, any case", nil, "WebSocket", http.StatusSwitchingProtocols},
		{"allowed by configuration", []string{"websocket", "x-tunnel"}, "x-tunnel/2", http.StatusSwitchingProtocols},
		{"none allowed", []string{}, "websocket", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, front, _ := newTestProxy(t, app, func(o *Options) { o.UpgradeProtocols = tc.allowed })
			res := rawHTTP1(t, strings.TrimPrefix(front.URL, "http://"), "GET / HTTP/1.1\r\nHost: x\r\n"+
				"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: "+tc.upgrade+"\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n", false)
			if res.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.want)
			}
			h := <-got
			if tc.want == http.StatusOK && (h.Get("Upgrade") != "" || h.Get("Http2-Settings") != "") {
				t.Errorf("the app saw Upgrade %q, HTTP2-Settings %q", h.Get("Upgrade"), h.Get("Http2-Settings"))
			}
		})
	}
}
