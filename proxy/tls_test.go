package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// writePair writes a self-signed certificate for names with the given
// serial and returns its files.
func writePair(t testing.TB, dir, base string, serial int64, names ...string) CertPair {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	p := CertPair{filepath.Join(dir, base+".crt"), filepath.Join(dir, base+".key")}
	os.WriteFile(p.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(p.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return p
}

func serialFor(t *testing.T, s *StaticCerts, sni string) int64 {
	t.Helper()
	c, err := s.GetCertificate(&tls.ClientHelloInfo{ServerName: sni})
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf.SerialNumber.Int64()
}

func TestStaticCertsSNI(t *testing.T) {
	dir := t.TempDir()
	s, err := NewStaticCerts([]CertPair{
		writePair(t, dir, "a", 1, "a.example.com"),
		writePair(t, dir, "w", 2, "*.example.org"),
	}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	for sni, want := range map[string]int64{"a.example.com": 1, "A.Example.COM.": 1, "x.example.org": 2, "unknown.test": 1, "": 1} {
		if got := serialFor(t, s, sni); got != want {
			t.Errorf("SNI %q: serial %d, want %d", sni, got, want)
		}
	}
}

func TestStaticCertsReload(t *testing.T) {
	dir := t.TempDir()
	p := writePair(t, dir, "a", 1, "a.example.com")
	s, err := NewStaticCerts([]CertPair{p}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	// A bad key on reload keeps the old certificate.
	os.WriteFile(p.KeyFile, []byte("not a key"), 0o600)
	if err := s.Reload(); err == nil {
		t.Fatal("reload of a bad key succeeded")
	}
	if got := serialFor(t, s, "a.example.com"); got != 1 {
		t.Fatalf("serial after a failed reload %d", got)
	}
	// A good new pair is picked up.
	writePair(t, dir, "a", 7, "a.example.com")
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := serialFor(t, s, "a.example.com"); got != 7 {
		t.Fatalf("serial after reload %d, want 7", got)
	}
}

// A renewal tool writes the certificate, then the key. A reload that read
// the new certificate with the old key fails; the key written just after
// that read must still count as a change, so the next check reloads.
func TestStaticCertsKeyWrittenDuringReload(t *testing.T) {
	dir := t.TempDir()
	p := writePair(t, dir, "a", 1, "a.example.com")
	s, err := NewStaticCerts([]CertPair{p}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	next := writePair(t, t.TempDir(), "a", 9, "a.example.com")
	copyFile := func(from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond) // a distinct modification time
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(next.CertFile, p.CertFile)
	testHookCertsRead = func() {
		testHookCertsRead = func() {}
		copyFile(next.KeyFile, p.KeyFile)
	}
	t.Cleanup(func() { testHookCertsRead = func() {} })
	if err := s.Reload(); err == nil {
		t.Fatal("the new certificate with the old key loaded")
	}
	if !s.changed() {
		t.Fatal("the key written during the reload is not seen as a change")
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := serialFor(t, s, "a.example.com"); got != 9 {
		t.Fatalf("serial %d, want 9", got)
	}
}

// A file read between its truncation and its new content, both within one
// tick of the file system's clock: same modification time, other size.
func TestStaticCertsSeeASizeChange(t *testing.T) {
	dir := t.TempDir()
	p := writePair(t, dir, "a", 1, "a.example.com")
	s, err := NewStaticCerts([]CertPair{p}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(p.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	tick := time.Now().Add(time.Minute).Truncate(time.Second)
	os.WriteFile(p.KeyFile, nil, 0o600)
	os.Chtimes(p.KeyFile, tick, tick)
	if err := s.Reload(); err == nil {
		t.Fatal("an empty key loaded")
	}
	os.WriteFile(p.KeyFile, key, 0o600)
	os.Chtimes(p.KeyFile, tick, tick)
	if !s.changed() {
		t.Fatal("new content with the same modification time is not seen as a change")
	}
}

func TestStaticCertsWatchAndServe(t *testing.T) {
	dir := t.TempDir()
	p := writePair(t, dir, "a", 1, "a.example.com")
	s, err := NewStaticCerts([]CertPair{p}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = TLSConfig("1.2", s.GetCertificate)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	ctx, cancel := context.WithCancel(t.Context())
	watched := make(chan struct{})
	go func() { s.Watch(ctx, 20*time.Millisecond); close(watched) }()
	defer func() { cancel(); <-watched }()
	serve := func() int64 {
		c := &http.Client{Transport: &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "a.example.com"}}}
		defer c.CloseIdleConnections()
		res, err := c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.ProtoMajor != 2 {
			t.Errorf("protocol %s, want HTTP/2", res.Proto)
		}
		return res.TLS.PeerCertificates[0].SerialNumber.Int64()
	}
	if got := serve(); got != 1 {
		t.Fatalf("served serial %d", got)
	}
	time.Sleep(30 * time.Millisecond) // a distinct modification time
	writePair(t, dir, "a", 9, "a.example.com")
	deadline := time.Now().Add(3 * time.Second)
	for serve() != 9 {
		if time.Now().After(deadline) {
			t.Fatal("changed files were not picked up")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRedirectAndHSTS(t *testing.T) {
	rec := httptest.NewRecorder()
	RedirectHTTPS("8443").ServeHTTP(rec, httptest.NewRequest("GET", "http://app.example.com:8080/a/b?x=1", nil))
	if rec.Code != http.StatusPermanentRedirect || rec.Header().Get("Location") != "https://app.example.com:8443/a/b?x=1" {
		t.Errorf("redirect: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	rec = httptest.NewRecorder()
	RedirectHTTPS("443").ServeHTTP(rec, httptest.NewRequest("GET", "http://app.example.com/", nil))
	if rec.Header().Get("Location") != "https://app.example.com/" {
		t.Errorf("redirect to 443: %q", rec.Header().Get("Location"))
	}
	for name, h := range map[string]http.Handler{
		"404":     http.NotFoundHandler(),
		"nothing": http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), // an implicit 200
	} {
		rec = httptest.NewRecorder()
		HSTS(h, 365*24*time.Hour).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if got := rec.Result().Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
			t.Errorf("%s: HSTS %q", name, got)
		}
	}
}

// TestHSTSSurvivesEarlyHints: a 103 from the backend clears the header map
// (net/http does not); the final answer must still carry HSTS, once, and
// the app's own HSTS header wins over baton's. Both request paths.
func TestHSTSSurvivesEarlyHints(t *testing.T) {
	const hint = "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"
	sb := newScriptBackend(t, map[string]scriptAnswer{
		"/hint": {raw: hint + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
		"/own":  {raw: hint + "HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=5\r\nContent-Length: 2\r\n\r\nok"},
		"/app":  {raw: "HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=5\r\nContent-Length: 2\r\n\r\nok"},
	})
	for _, fast := range []bool{true, false} {
		p := proxyTo(t, "http://"+sb.ln.Addr().String(), fast)
		front := httptest.NewUnstartedServer(nil)
		front.Config = NewServer(HSTS(p, time.Minute), zap.NewNop())
		front.Start()
		t.Cleanup(front.Close)
		for path, want := range map[string]string{"/hint": "max-age=60", "/own": "max-age=5", "/app": "max-age=5"} {
			var hintHSTS []string
			ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{
				Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
					hintHSTS = append(hintHSTS, h.Values("Strict-Transport-Security")...)
					return nil
				},
			})
			req, _ := http.NewRequestWithContext(ctx, "GET", front.URL+path, nil)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if got := res.Header.Values("Strict-Transport-Security"); len(got) != 1 || got[0] != want || len(hintHSTS) != 0 {
				t.Errorf("fast=%v %s: HSTS %q on the answer (want %q) and %q on the 103 (want none)", fast, path, got, want, hintHSTS)
			}
		}
	}
}

// TestStaticCertsLargeFile: certificate and key files are read with a
// bound, so a huge or endless file is an error, and a reload that meets
// one keeps the running certificate.
func TestStaticCertsLargeFile(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.pem")
	if err := os.WriteFile(big, make([]byte, 1<<20+1), 0o600); err != nil {
		t.Fatal(err)
	}
	files := []string{big}
	if runtime.GOOS != "windows" {
		files = append(files, "/dev/zero")
	}
	good := writePair(t, dir, "a", 1, "a.example.com")
	for _, f := range files {
		for _, p := range []CertPair{{CertFile: f, KeyFile: good.KeyFile}, {CertFile: good.CertFile, KeyFile: f}} {
			_, err := NewStaticCerts([]CertPair{p}, zap.NewNop())
			if want := f + ": larger than 1 MiB"; err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%+v: %v, want an error containing %q", p, err, want)
			}
		}
	}
	s, err := NewStaticCerts([]CertPair{good}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(good.CertFile, make([]byte, 1<<20+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err == nil || !strings.Contains(err.Error(), "larger than 1 MiB") {
		t.Fatalf("reload of a huge certificate: %v", err)
	}
	if got := serialFor(t, s, "a.example.com"); got != 1 {
		t.Fatalf("serial after a failed reload %d", got)
	}
}
