//go:build unix

package monitoring

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/batonproxy/baton/deploy/internal/deploytest"
	"github.com/batonproxy/baton/internal/testproc"
)

// prometheusOwn are series Prometheus makes itself for every target.
var prometheusOwn = map[string]bool{"up": true}

// TestMetricNamesAreExported: every metric the alert rules and the
// dashboard query is one that baton exports, by a live scrape of a pair of
// real baton processes (file lease, peer link, HTTPS with a static
// certificate, a failing optional health check, requests served and a
// step-down, so the metrics that appear only once something happened are
// there too).
func TestMetricNamesAreExported(t *testing.T) {
	if testing.Short() {
		t.Skip("starts baton processes")
	}
	used := map[string][]string{} // metric -> where
	for name, expr := range ruleExprs(t) {
		for _, m := range metricNames(expr) {
			used[m] = append(used[m], "rule "+name)
		}
	}
	for name, expr := range dashboardQueries(t) {
		for _, m := range metricNames(expr) {
			used[m] = append(used[m], "dashboard "+name)
		}
	}
	if len(used) < 20 {
		t.Fatalf("only %d metric names found in the rules and the dashboard: %v", len(used), used)
	}

	p := startPair(t)
	deadline := time.Now().Add(20 * time.Second)
	stepped := false
	var exported map[string]bool
	var missing []string
	for {
		exported = map[string]bool{}
		for _, n := range p.nodes {
			for name := range scrape(t, n.admin) {
				exported[name] = true
			}
		}
		missing = missing[:0]
		for m := range used {
			if !exported[m] && !prometheusOwn[m] {
				missing = append(missing, m)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		p.get(t) // requests on both paths
		if !stepped {
			stepped = p.stepDownActive(t) // a drain and a lease loss
		}
		time.Sleep(200 * time.Millisecond)
	}
	slices.Sort(missing)
	for _, m := range missing {
		t.Errorf("%s is not exported by baton (used by %v)", m, used[m])
	}
	var unused []string
	for m := range exported {
		if strings.HasPrefix(m, "baton_") && len(used[m]) == 0 && !strings.HasSuffix(m, "_sum") && !strings.HasSuffix(m, "_count") &&
			len(used[m+"_bucket"]) == 0 && len(used[strings.TrimSuffix(m, "_bucket")]) == 0 {
			unused = append(unused, m)
		}
	}
	slices.Sort(unused)
	t.Logf("%d metric names used, all exported; baton metrics neither graphed nor alerted on: %v", len(used), unused)
}

// scrape returns the sample names of a node's /metrics.
func scrape(t *testing.T, admin int) map[string]bool {
	t.Helper()
	res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", admin))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || l[0] == '#' {
			continue
		}
		if i := strings.IndexAny(l, "{ "); i > 0 {
			names[l[:i]] = true
		}
	}
	return names
}

type pairNode struct {
	name                            string
	http, https, probe, admin, peer int
	closed                          int // a port nothing listens on: the optional check's target
	proc                            *testproc.Proc
}

type pair struct {
	nodes [2]*pairNode
	token string
	app   int
}

// startPair starts a demo app and two baton nodes on loopback sharing a
// lease file and a peer link.
func startPair(t *testing.T) *pair {
	t.Helper()
	baton := deploytest.Binary(t, "baton", "./cmd/baton")
	demo := deploytest.Binary(t, "demoapp", "./demo/app")
	dir := t.TempDir()
	free := func() int { return testproc.FreePort(t, "127.0.0.1") }
	p := &pair{token: "monitoring-test-token", app: free()}
	testproc.Start(t, "app", testproc.Options{}, demo, "-name", "app", "-listen", fmt.Sprintf("127.0.0.1:%d", p.app))
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", p.app))
	write := func(name, content string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	tokenFile := write("token", p.token)
	secretFile := write("peer-secret", "monitoring-test-peer-secret")
	certFile, keyFile := selfSigned(t, dir)
	for i, name := range []string{"node-a", "node-b"} {
		p.nodes[i] = &pairNode{name: name, http: free(), https: free(), probe: free(), admin: free(), peer: free(), closed: free()}
	}
	for i, n := range p.nodes {
		other := p.nodes[1-i]
		cfg := fmt.Sprintf(`node_name = %q
[listen]
http = "127.0.0.1:%d"
https = "127.0.0.1:%d"
[backend]
url = "http://127.0.0.1:%d"
[probe]
listen = "127.0.0.1:%d"
lb_interval = "1s"
[admin]
listen = "127.0.0.1:%d"
token_file = %q
[lease]
backend = "file"
duration = "15s"
renew_interval = "1s"
renew_deadline = "5s"
retry_interval = "500ms"
candidacy_backoff = "2s"
[lease.file]
path = %q
[[health.check]]
name = "app"
type = "http"
url = "http://127.0.0.1:%d/healthz"
interval = "250ms"
timeout = "200ms"
rise = 1
fall = 2
[[health.check]]
name = "optional"
type = "tcp"
address = "127.0.0.1:%d"
interval = "250ms"
timeout = "200ms"
required = false
[drain]
timeout = "2s"
exit_delay = "500ms"
[tls]
redirect_http = false
[[tls.certificate]]
cert_file = %q
key_file = %q
[peer]
listen = "127.0.0.1:%d"
peers = ["127.0.0.1:%d"]
secret_file = %q
`, n.name, n.http, n.https, p.app, n.probe, n.admin, tokenFile, filepath.Join(dir, "lease"),
			p.app, n.closed, certFile, keyFile, n.peer, other.peer, secretFile)
		f := write(n.name+".toml", cfg)
		n.proc = testproc.Start(t, n.name, testproc.Options{}, baton, "run", "-config", f)
	}
	for _, n := range p.nodes {
		waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", n.admin))
	}
	return p
}

var quick = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if res, err := quick.Get(url); err == nil {
			res.Body.Close()
			return
		}
	}
	t.Fatalf("%s did not answer in 10s", url)
}

// get sends a request through each node (one serves it, the other
// forwards it once there is an active node).
func (p *pair) get(t *testing.T) {
	t.Helper()
	for _, n := range p.nodes {
		if res, err := quick.Get(fmt.Sprintf("http://127.0.0.1:%d/", n.http)); err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	}
}

// stepDownActive asks the active node, if there is one yet, to step down.
func (p *pair) stepDownActive(t *testing.T) bool {
	t.Helper()
	for _, n := range p.nodes {
		res, err := quick.Get(fmt.Sprintf("http://127.0.0.1:%d/probe", n.probe))
		if err != nil {
			continue
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			continue
		}
		req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/step-down", n.admin), nil)
		req.Header.Set("Authorization", "Bearer "+p.token)
		res, err = quick.Do(req)
		if err != nil {
			t.Fatalf("step-down %s: %v", n.name, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("step-down %s: %s %s", n.name, res.Status, b)
		}
		return true
	}
	return false
}

// selfSigned writes a certificate and key for 127.0.0.1, valid for a day.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "baton monitoring test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
