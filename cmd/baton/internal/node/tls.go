package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/batonproxy/baton/certstore"
	"github.com/batonproxy/baton/config"
	"github.com/batonproxy/baton/internal/fsutil"
	"github.com/batonproxy/baton/proxy"
)

// tlsSource provides the HTTPS listener's certificates: static files
// chosen by SNI, or ACME through certmagic with storage shared by every
// node, so a newly promoted node already has the certificate and only one
// node orders it (certmagic locks through the storage).
type tlsSource struct {
	static  *proxy.StaticCerts
	magic   *certmagic.Config
	cache   *certmagic.Cache
	issuer  *certmagic.ACMEIssuer
	domains []string
	log     *zap.Logger
}

// newCertStorage builds the shared ACME storage named by tls.acme.storage.
var newCertStorage = func(cfg *config.Config, log *zap.Logger) (certmagic.Storage, error) {
	switch cfg.TLS.ACME.Storage {
	case "file", "":
		return &certmagic.FileStorage{Path: cfg.TLS.ACME.StoragePath}, nil
	case "azblob":
		c, err := azblobClient(cfg)
		if err != nil {
			return nil, err
		}
		s, err := certstore.New(certstore.Options{Client: c, Container: cfg.Lease.AzBlob.Container,
			Prefix: cfg.TLS.ACME.StoragePrefix}, log)
		if err != nil {
			return nil, fmt.Errorf("tls.acme.storage azblob: %w", err)
		}
		return s, nil
	default:
		return nil, fmt.Errorf("tls.acme.storage: %q is not available in this build", cfg.TLS.ACME.Storage)
	}
}

func newTLS(cfg *config.Config, log *zap.Logger) (*tlsSource, error) {
	t := &tlsSource{log: log.Named("tls")}
	if len(cfg.TLS.Certificates) > 0 {
		pairs := make([]proxy.CertPair, len(cfg.TLS.Certificates))
		for i, c := range cfg.TLS.Certificates {
			pairs[i] = proxy.CertPair{CertFile: c.CertFile, KeyFile: c.KeyFile}
		}
		s, err := proxy.NewStaticCerts(pairs, log)
		if err != nil {
			return nil, fmt.Errorf("tls.certificate: %w", err)
		}
		t.static = s
		return t, nil
	}
	a := cfg.TLS.ACME
	if len(a.Domains) == 0 {
		return nil, errors.New("listen.https needs [[tls.certificate]] or tls.acme.domains")
	}
	storage, err := newCertStorage(cfg, log)
	if err != nil {
		return nil, err
	}
	var roots *x509.CertPool
	if a.CARoot != "" {
		pem, err := fsutil.ReadFileLimit(a.CARoot, fsutil.MaxPEMFile)
		if err != nil {
			return nil, fmt.Errorf("tls.acme.ca_root: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.acme.ca_root: no PEM certificate in %s", a.CARoot)
		}
	}
	mlog := log.Named("certmagic")
	t.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return t.magic, nil },
		Logger:           mlog,
	})
	t.magic = certmagic.New(t.cache, certmagic.Config{Storage: storage, Logger: mlog})
	t.issuer = certmagic.NewACMEIssuer(t.magic, certmagic.ACMEIssuer{
		CA:                      a.CA,
		Email:                   a.Email,
		Agreed:                  true,
		TrustedRoots:            roots,
		AltHTTPPort:             portOf(cfg.Listen.HTTP),
		AltTLSALPNPort:          portOf(cfg.Listen.HTTPS),
		Logger:                  mlog,
		DisableHTTPChallenge:    !slices.Contains(a.Challenges, config.ChallengeHTTP01),
		DisableTLSALPNChallenge: !slices.Contains(a.Challenges, config.ChallengeTLSALPN01),
	})
	t.magic.Issuers = []certmagic.Issuer{t.issuer}
	t.domains = a.Domains
	return t, nil
}

// portOf returns the port of a listen address, 0 if there is none.
func portOf(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	var n int
	fmt.Sscan(p, &n)
	return n
}

// start begins certificate management: ACME certificates are loaded from
// storage or obtained in the background; static files are watched.
func (t *tlsSource) start(ctx context.Context) error {
	if t.static != nil {
		go t.static.Watch(ctx, 10*time.Second)
		return nil
	}
	return t.magic.ManageAsync(ctx, t.domains)
}

func (t *tlsSource) stop() {
	if t.cache != nil {
		t.cache.Stop()
	}
	if t.magic == nil {
		return
	}
	if s, ok := t.magic.Storage.(*certstore.Storage); ok {
		// Release locks still held, so the other node need not wait out
		// their lease.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.Close(ctx)
		cancel()
	}
}

// config is the HTTPS listener's TLS configuration.
func (t *tlsSource) config(minVersion string) *tls.Config {
	if t.static != nil {
		return proxy.TLSConfig(minVersion, t.static.GetCertificate)
	}
	if t.issuer.DisableTLSALPNChallenge {
		return proxy.TLSConfig(minVersion, t.magic.GetCertificate)
	}
	return proxy.TLSConfig(minVersion, t.magic.GetCertificate, "acme-tls/1")
}

// challenges wraps the plain HTTP handler so ACME HTTP-01 challenges are
// answered on any node (certmagic finds tokens of other nodes in storage).
func (t *tlsSource) challenges(h http.Handler) http.Handler {
	if t.issuer == nil {
		return h
	}
	return t.issuer.HTTPChallengeHandler(h)
}

// reload re-reads static certificate files (on SIGHUP / reload).
func (t *tlsSource) reload() error {
	if t.static == nil {
		return nil
	}
	return t.static.Reload()
}

// expires is the earliest expiry among the certificates in force.
func (t *tlsSource) expires() time.Time {
	if t.static != nil {
		return t.static.Expires()
	}
	var first time.Time
	for _, d := range t.domains {
		for _, c := range t.cache.AllMatchingCertificates(d) {
			if first.IsZero() || c.Leaf.NotAfter.Before(first) {
				first = c.Leaf.NotAfter
			}
		}
	}
	return first
}
