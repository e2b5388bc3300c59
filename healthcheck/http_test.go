package healthcheck

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// newHTTPChecker builds a checker and closes its idle connection when the test ends.
func newHTTPChecker(t *testing.T, o HTTPOptions) Checker {
	t.Helper()
	c, err := NewHTTP(o)
	if err != nil {
		t.Fatalf("NewHTTP: %v", err)
	}
	t.Cleanup(c.(idleCloser).CloseIdleConnections)
	return c
}

func checkWithin(t *testing.T, c Checker, timeout time.Duration) (string, error) {
	t.Helper()
	ctx, cancel := withCheckTimeout(context.Background(), timeout)
	defer cancel()
	return c.Check(ctx)
}

func statusServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		if code == 0 {
			code = 200
		}
		if code >= 300 && code < 400 {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, r.URL.Query().Get("body"))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestHTTPStatusRanges(t *testing.T) {
	srv := statusServer(t)
	tests := []struct {
		name   string
		code   int
		expect []StatusRange
		want   string // "" = pass, else the reason's suffix
	}{
		{"default accepts 200", 200, nil, ""},
		{"default accepts 204", 204, nil, ""},
		{"default accepts a redirect, not followed", 302, nil, ""},
		{"default rejects 404", 404, nil, "status 404, want 200-399"},
		{"default rejects 500", 500, nil, "status 500, want 200-399"},
		{"exact 200 rejects 302", 302, []StatusRange{{200, 200}}, "status 302, want 200"},
		{"exact 200 accepts 200", 200, []StatusRange{{200, 200}}, ""},
		{"several ranges", 204, []StatusRange{{200, 200}, {204, 206}}, ""},
		{"several ranges reject", 503, []StatusRange{{200, 200}, {204, 206}}, "status 503, want 200 or 204-206"},
		{"maintenance page accepted on purpose", 503, []StatusRange{{200, 299}, {503, 503}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := srv.URL + "/health?code=" + strconv.Itoa(tt.code)
			c := newHTTPChecker(t, HTTPOptions{URL: u, Expect: tt.expect})
			_, err := checkWithin(t, c, 5*time.Second)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Check: %v, want pass", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check passed, want %q", tt.want)
			}
			if want := "GET " + u + ": " + tt.want; err.Error() != want {
				t.Fatalf("reason %q, want %q", err, want)
			}
		})
	}
}

func TestHTTPBodyRegex(t *testing.T) {
	srv := statusServer(t)
	tests := []struct {
		name, body, re string
		want           string
	}{
		{"matches", "status: ok", "ok", ""},
		{"anchored matches", "ok", "^ok$", ""},
		{"does not match", "status: degraded", "ok", `body does not match "ok"`},
		{"empty body", "", ".", `body does not match "."`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newHTTPChecker(t, HTTPOptions{URL: srv.URL + "/?body=" + url.QueryEscape(tt.body), BodyRegex: tt.re})
			out, err := checkWithin(t, c, 5*time.Second)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				if !strings.HasPrefix(out, "200 OK") {
					t.Fatalf("output %q, want the status first", out)
				}
				return
			}
			if err == nil || !strings.HasSuffix(err.Error(), ": "+tt.want) {
				t.Fatalf("Check: %v, want reason ending %q", err, tt.want)
			}
		})
	}
}

func TestHTTPHugeBodyIsReadOnlyUpToTheLimit(t *testing.T) {
	const size = 8 << 20
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// "head" at the start, "tail" at the very end of 8 MiB.
		w.Header().Set("Content-Length", strconv.Itoa(size))
		_, _ = io.Copy(w, io.MultiReader(strings.NewReader("head"),
			io.LimitReader(zeros{}, size-8), strings.NewReader("tail")))
	}))
	t.Cleanup(srv.Close)

	tests := []struct {
		re, want string
	}{
		{"head", ""},
		{"tail", `body does not match "tail" in its first 1024 bytes`},
	}
	for _, tt := range tests {
		t.Run(tt.re, func(t *testing.T) {
			c := newHTTPChecker(t, HTTPOptions{URL: srv.URL, BodyRegex: tt.re, MaxBodyBytes: 1024})
			out, err := checkWithin(t, c, 5*time.Second)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Check: %v", err)
			case tt.want != "" && (err == nil || !strings.HasSuffix(err.Error(), tt.want)):
				t.Fatalf("Check: %v, want reason ending %q", err, tt.want)
			}
			if len(out) > len("200 OK\n")+outputBodyBytes {
				t.Fatalf("output is %d bytes, want it bounded", len(out))
			}
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestHTTPSlowBackendTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close

	c := newHTTPChecker(t, HTTPOptions{URL: srv.URL})
	start := time.Now()
	_, err := checkWithin(t, c, 100*time.Millisecond)
	if want := "GET " + srv.URL + ": timeout after 100ms"; err == nil || err.Error() != want {
		t.Fatalf("Check: %v, want %q", err, want)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v does not wrap context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Check took %s, want about 100ms", d)
	}
}

func TestHTTPSlowBodyTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	c := newHTTPChecker(t, HTTPOptions{URL: srv.URL, BodyRegex: "complete"})
	// The timeout covers the dial and the header too: 1s leaves room for
	// them on a loaded machine, so the time runs out in the body.
	_, err := checkWithin(t, c, time.Second)
	if want := "GET " + srv.URL + ": read body: timeout after 1s"; err == nil || err.Error() != want {
		t.Fatalf("Check: %v, want %q", err, want)
	}
}

func TestHTTPConnectionRefused(t *testing.T) {
	addr := closedPort(t)
	u := "http://" + addr + "/"
	c := newHTTPChecker(t, HTTPOptions{URL: u})
	_, err := checkWithin(t, c, 5*time.Second)
	if want := "GET " + u + ": connection refused"; err == nil || err.Error() != want {
		t.Fatalf("Check: %v, want %q", err, want)
	}
}

// closedPort returns a loopback address on which nothing listens (it was free a moment ago).
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestHTTPRequestShape(t *testing.T) {
	type seen struct {
		method, host, ua, custom string
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Method, r.Host, r.Header.Get("User-Agent"), r.Header.Get("X-Check")}
	}))
	t.Cleanup(srv.Close)

	tests := []struct {
		name string
		o    HTTPOptions
		want seen
	}{
		{"defaults", HTTPOptions{}, seen{"GET", strings.TrimPrefix(srv.URL, "http://"), "baton-healthcheck", ""}},
		{"host and headers", HTTPOptions{Method: "head", Host: "app.example", Headers: map[string]string{"X-Check": "1"}},
			seen{"HEAD", "app.example", "baton-healthcheck", "1"}},
		{"Host header acts as Host", HTTPOptions{Headers: map[string]string{"host": "vhost.example"}},
			seen{"GET", "vhost.example", "baton-healthcheck", ""}},
		{"User-Agent can be replaced", HTTPOptions{Headers: map[string]string{"User-Agent": "probe"}},
			seen{"GET", strings.TrimPrefix(srv.URL, "http://"), "probe", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.URL = srv.URL
			c := newHTTPChecker(t, tt.o)
			if _, err := checkWithin(t, c, 5*time.Second); err != nil {
				t.Fatalf("Check: %v", err)
			}
			if s := <-got; s != tt.want {
				t.Fatalf("server saw %+v, want %+v", s, tt.want)
			}
		})
	}
}

func TestHTTPS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failing cases make handshake errors
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		o    HTTPOptions
		want string // reason suffix, "" = pass
	}{
		{"unknown authority", HTTPOptions{}, "certificate signed by unknown authority"},
		{"custom CA", HTTPOptions{CAFile: caFile, BodyRegex: "ok"}, ""},
		// httptest's certificate names example.com: the Host override is used as server name.
		{"custom CA with host override", HTTPOptions{CAFile: caFile, Host: "example.com"}, ""},
		{"custom CA with a wrong host", HTTPOptions{CAFile: caFile, Host: "other.test"}, "not other.test"},
		{"skip verify", HTTPOptions{SkipVerify: true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.URL = srv.URL
			c := newHTTPChecker(t, tt.o)
			_, err := checkWithin(t, c, 5*time.Second)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Check: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Check: %v, want a reason containing %q", err, tt.want)
			}
		})
	}
}

func TestNewHTTPRejects(t *testing.T) {
	tests := []struct {
		name string
		o    HTTPOptions
		want string
	}{
		{"no url", HTTPOptions{}, "scheme must be http or https"},
		{"bad scheme", HTTPOptions{URL: "ftp://x/"}, "scheme must be http or https"},
		{"no host", HTTPOptions{URL: "http:///x"}, "url has no host"},
		{"bad range", HTTPOptions{URL: "http://x/", Expect: []StatusRange{{300, 200}}}, "invalid expected status range 300-200"},
		{"range too wide", HTTPOptions{URL: "http://x/", Expect: []StatusRange{{0, 200}}}, "invalid expected status range 0-200"},
		{"bad regex", HTTPOptions{URL: "http://x/", BodyRegex: "("}, "body regex"},
		{"regex with HEAD", HTTPOptions{URL: "http://x/", Method: "HEAD", BodyRegex: "ok"}, "HEAD response has no body"},
		{"bad method", HTTPOptions{URL: "http://x/", Method: "GE T"}, "invalid method"},
		{"negative body limit", HTTPOptions{URL: "http://x/", MaxBodyBytes: -1}, "negative"},
		{"missing CA file", HTTPOptions{URL: "https://x/", CAFile: "/nonexistent/ca.pem"}, "read ca file"},
		{"password redacted", HTTPOptions{URL: "ftp://u:secret@x/"}, "ftp://u:xxxxx@x/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewHTTP(tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewHTTP: %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("error %q leaks the password", err)
			}
		})
	}
}

func TestTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_ = conn.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })

	if out, err := checkWithin(t, NewTCP(ln.Addr().String()), 5*time.Second); err != nil || !strings.HasPrefix(out, "connected to ") {
		t.Fatalf("Check open port: %q, %v", out, err)
	}
	addr := closedPort(t)
	if _, err := checkWithin(t, NewTCP(addr), 5*time.Second); err == nil || err.Error() != "dial "+addr+": connection refused" {
		t.Fatalf("Check closed port: %v", err)
	}
	if _, err := checkWithin(t, NewTCP("no-port"), 5*time.Second); err == nil || !strings.Contains(err.Error(), "missing port") {
		t.Fatalf("Check bad address: %v", err)
	}
}

// TestHTTPLargeCAFile: the CA file is read with a bound, so a huge or
// endless file (tls_ca_file = "/dev/zero") is an error, not a crash.
func TestHTTPLargeCAFile(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big.pem")
	if err := os.WriteFile(big, make([]byte, 1<<20+1), 0o600); err != nil {
		t.Fatal(err)
	}
	files := []string{big}
	if runtime.GOOS != "windows" {
		files = append(files, "/dev/zero")
	}
	for _, f := range files {
		_, err := NewHTTP(HTTPOptions{URL: "https://x/", CAFile: f})
		if want := "read ca file: " + f + ": larger than 1 MiB"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CAFile %s: %v, want an error containing %q", f, err, want)
		}
	}
}
