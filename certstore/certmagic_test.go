package certstore

// certmagic on top of the Storage: two nodes, each with its own Storage,
// Cache and Config, obtain a certificate for the same name at once. One
// issuance reaches the CA; both serve the same certificate.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap/zaptest"

	"github.com/batonproxy/baton/internal/azure/azuritetest"
)

// fakeCA issues certificates for any CSR, signed by its own root, and
// counts the issuances.
type fakeCA struct {
	key    *ecdsa.PrivateKey
	cert   *x509.Certificate
	issued atomic.Int32
}

func newFakeCA(t *testing.T) *fakeCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "certstore test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeCA{key: key, cert: cert}
}

func (c *fakeCA) IssuerKey() string { return "certstore-test-ca" }

func (c *fakeCA) Issue(ctx context.Context, csr *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	c.issued.Add(1)
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		DNSNames:     csr.DNSNames,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(90 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, csr.PublicKey, c.key)
	if err != nil {
		return nil, err
	}
	chain := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw})...)
	return &certmagic.IssuedCertificate{Certificate: chain}, nil
}

// newNode builds one node's certmagic objects on its own Storage.
func newNode(t *testing.T, az *azuritetest.Azurite, ca *fakeCA) *certmagic.Config {
	t.Helper()
	s, _ := newAzStorage(t, az, func(o *Options) { o.Prefix = "certmagic-smoke/" })
	log := zaptest.NewLogger(t)
	var cfg *certmagic.Config
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return cfg, nil },
		Logger:           log,
	})
	t.Cleanup(cache.Stop)
	cfg = certmagic.New(cache, certmagic.Config{
		Storage:    s,
		Issuers:    []certmagic.Issuer{ca},
		Logger:     log,
		OCSP:       certmagic.OCSPConfig{DisableStapling: true},
		DisableARI: true,
	})
	return cfg
}

func testCertmagicTwoNodes(t *testing.T, az *azuritetest.Azurite) {
	const name = "app.example.test"
	ctx := ctxT(t, 30*time.Second)
	ca := newFakeCA(t)
	nodes := []*certmagic.Config{newNode(t, az, ca), newNode(t, az, ca)}

	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	start := time.Now()
	for i, cfg := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = cfg.ObtainCertSync(ctx, name)
		}()
	}
	wg.Wait()
	t.Logf("two nodes obtained %s at once in %v", name, time.Since(start))
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: ObtainCertSync: %v", i, err)
		}
	}
	if n := ca.issued.Load(); n != 1 {
		t.Errorf("the CA issued %d certificates, want 1 (the other node must wait for the lock and find it in storage)", n)
	}

	var serials []string
	for i, cfg := range nodes {
		cert, err := cfg.CacheManagedCertificate(ctx, name)
		if err != nil {
			t.Fatalf("node %d: CacheManagedCertificate: %v", i, err)
		}
		serials = append(serials, cert.Leaf.SerialNumber.String())
	}
	if serials[0] != serials[1] {
		t.Errorf("nodes serve serials %s and %s, want the same certificate", serials[0], serials[1])
	}
	// Obtaining again is a no-op: the certificate is in storage.
	if err := nodes[1].ObtainCertSync(ctx, name); err != nil {
		t.Fatal(err)
	}
	if n := ca.issued.Load(); n != 1 {
		t.Errorf("after a second obtain the CA issued %d certificates, want 1", n)
	}
}
