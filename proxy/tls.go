package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/batonproxy/baton/internal/fsutil"
)

// CertPair names a certificate file and its key file (PEM).
type CertPair struct{ CertFile, KeyFile string }

// StaticCerts serves certificates from files, chosen by SNI. Reload
// re-reads the files; a bad file keeps the certificates in force.
type StaticCerts struct {
	pairs []CertPair
	log   *zap.Logger
	set   atomic.Pointer[certSet]
	mu    sync.Mutex           // serialises Reload
	seen  map[string]fileStamp // at the last load
}

// fileStamp tells a file's versions apart. The size is there because a
// modification time is one clock tick coarse: a file seen just after its
// truncation and again after its new content was written, within one tick,
// differs only in size.
type fileStamp struct {
	mtime time.Time
	size  int64
}

type certSet struct {
	byName  map[string]*tls.Certificate // exact names and "*.example.com"
	first   *tls.Certificate
	expires time.Time // earliest NotAfter
}

// NewStaticCerts loads every pair; an error names the file.
func NewStaticCerts(pairs []CertPair, log *zap.Logger) (*StaticCerts, error) {
	if len(pairs) == 0 {
		return nil, errors.New("no certificates")
	}
	s := &StaticCerts{pairs: pairs, log: log.Named("tls")}
	s.seen = s.stat() // before reading: a write during the read shows as a change
	set, err := loadCertSet(pairs)
	if err != nil {
		return nil, err
	}
	s.set.Store(set)
	return s, nil
}

func loadCertSet(pairs []CertPair) (*certSet, error) {
	set := &certSet{byName: map[string]*tls.Certificate{}}
	for _, p := range pairs {
		c, err := loadKeyPair(p)
		if err != nil {
			return nil, fmt.Errorf("certificate %s / key %s: %w", p.CertFile, p.KeyFile, err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			return nil, fmt.Errorf("certificate %s: %w", p.CertFile, err)
		}
		c.Leaf = leaf
		if set.first == nil {
			set.first = &c
		}
		if set.expires.IsZero() || leaf.NotAfter.Before(set.expires) {
			set.expires = leaf.NotAfter
		}
		names := leaf.DNSNames
		if len(names) == 0 && leaf.Subject.CommonName != "" {
			names = []string{leaf.Subject.CommonName}
		}
		for _, n := range names {
			n = strings.ToLower(n)
			if _, dup := set.byName[n]; !dup {
				set.byName[n] = &c
			}
		}
		for _, ip := range leaf.IPAddresses {
			set.byName[ip.String()] = &c
		}
	}
	return set, nil
}

// loadKeyPair is tls.LoadX509KeyPair with a size bound on both files, so a
// huge or endless file (/dev/zero) is an error instead of filling memory.
func loadKeyPair(p CertPair) (tls.Certificate, error) {
	cert, err := fsutil.ReadFileLimit(p.CertFile, fsutil.MaxPEMFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := fsutil.ReadFileLimit(p.KeyFile, fsutil.MaxPEMFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(cert, key)
}

// GetCertificate picks the certificate for the client's SNI: an exact
// name, then a wildcard, then the first certificate.
func (s *StaticCerts) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	set := s.set.Load()
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if c, ok := set.byName[name]; ok {
		return c, nil
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		if c, ok := set.byName["*"+name[i:]]; ok {
			return c, nil
		}
	}
	return set.first, nil
}

// Expires is the earliest expiry of the certificates in force.
func (s *StaticCerts) Expires() time.Time { return s.set.Load().expires }

// Reload re-reads the files. On error the certificates in force stay and
// the error is returned (and logged).
func (s *StaticCerts) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The times are taken before the files are read, so a file written
	// while they are read (a renewal tool writes the certificate, then the
	// key) still differs from them and the next Watch tick reloads again.
	s.seen = s.stat()
	set, err := loadCertSet(s.pairs)
	testHookCertsRead()
	if err != nil {
		s.log.Error("certificate reload failed, keeping the certificates in force", zap.Error(err))
		return err
	}
	s.set.Store(set)
	s.log.Info("certificates reloaded", zap.Time("expires", set.expires))
	return nil
}

// testHookCertsRead runs in Reload once the files are read.
var testHookCertsRead = func() {}

func (s *StaticCerts) stat() map[string]fileStamp {
	m := map[string]fileStamp{}
	for _, p := range s.pairs {
		for _, f := range []string{p.CertFile, p.KeyFile} {
			if fi, err := os.Stat(f); err == nil {
				m[f] = fileStamp{fi.ModTime(), fi.Size()}
			}
		}
	}
	return m
}

// Watch reloads the certificates when a file's modification time or size
// changes, checking every interval until ctx ends. It blocks; run it in a
// goroutine.
func (s *StaticCerts) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.changed() {
			s.Reload()
		}
	}
}

// changed reports whether a file's modification time or size differs from
// the one taken at the last load.
func (s *StaticCerts) changed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.stat()
	if len(now) != len(s.seen) {
		return true
	}
	for f, st := range now {
		if was, ok := s.seen[f]; !ok || !was.mtime.Equal(st.mtime) || was.size != st.size {
			return true
		}
	}
	return false
}

// TLSConfig is the server TLS configuration: TLS 1.2 minimum (or 1.3),
// AEAD cipher suites with forward secrecy only, HTTP/2 and HTTP/1.1, and
// any extra ALPN protocols (acme-tls/1 for the TLS-ALPN-01 challenge).
func TLSConfig(minVersion string, get func(*tls.ClientHelloInfo) (*tls.Certificate, error), extraALPN ...string) *tls.Config {
	minV := uint16(tls.VersionTLS12)
	if minVersion == "1.3" {
		minV = tls.VersionTLS13
	}
	return &tls.Config{
		MinVersion:     minV,
		GetCertificate: get,
		CipherSuites: []uint16{ // TLS 1.2 only; 1.3 suites are not configurable
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		NextProtos: append([]string{"h2", "http/1.1"}, extraALPN...),
	}
}

// ACMEChallengePrefix is the path of HTTP-01 challenges, answered on any
// node and exempt from the HTTPS redirect.
const ACMEChallengePrefix = "/.well-known/acme-challenge/"

// RedirectHTTPS answers every request with a permanent redirect to the same
// URL on HTTPS (httpsPort "" or "443": no port in the URL).
func RedirectHTTPS(httpsPort string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if host == "" {
			http.Error(w, "missing Host header", http.StatusBadRequest)
			return
		}
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		if httpsPort != "" && httpsPort != "443" {
			host += ":" + httpsPort
		}
		w.Header().Set("Connection", "close")
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
}

// HSTS adds Strict-Transport-Security with the given max-age to every
// final answer that does not carry the header already (the app's own
// header wins). It is added when the answer is written, not before the
// handler runs, so the 1xx answers passed on from the backend, which clear
// the header map, cannot drop it.
func HSTS(h http.Handler, maxAge time.Duration) http.Handler {
	if maxAge <= 0 {
		return h
	}
	v := []string{"max-age=" + strconv.FormatInt(int64(maxAge/time.Second), 10)}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hw := &hstsWriter{ResponseWriter: w, value: v}
		h.ServeHTTP(hw, r)
		if !hw.done {
			hw.add() // nothing written: net/http sends an empty 200 with this header map
		}
	})
}

type hstsWriter struct {
	http.ResponseWriter
	value []string // shared by all requests: never modified
	done  bool
}

func (w *hstsWriter) WriteHeader(code int) {
	if !w.done && code >= 200 {
		w.add()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *hstsWriter) Write(b []byte) (int, error) {
	if !w.done {
		w.add() // an implicit 200
	}
	return w.ResponseWriter.Write(b)
}

// FlushError is what http.ResponseController.Flush calls: a flush before
// the first write sends the header too.
func (w *hstsWriter) FlushError() error {
	if !w.done {
		w.add()
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *hstsWriter) add() {
	w.done = true
	h := w.Header()
	if _, ok := h["Strict-Transport-Security"]; !ok {
		h["Strict-Transport-Security"] = w.value[:1:1]
	}
}

func (w *hstsWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
