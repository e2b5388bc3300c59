//go:build unix

package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonproxy/baton/internal/azure/azuritetest"
)

// pebbleBins builds Pebble and its mock DNS server from the pinned tools
// module once per test binary.
var (
	pebbleOnce sync.Once
	pebbleErr  error
	pebbleDir  string // the pebble module's folder (test certificates)
)

func buildPebble(t *testing.T) {
	t.Helper()
	pebbleOnce.Do(func() {
		for _, c := range []struct{ pkg, out string }{
			{"github.com/letsencrypt/pebble/v2/cmd/pebble", "pebble"},
			{"github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv", "challtestsrv"},
		} {
			cmd := exec.Command("go", "build", "-modfile=../../tools/go.mod", "-o", filepath.Join(binDir, c.out), c.pkg)
			if out, err := cmd.CombinedOutput(); err != nil {
				pebbleErr = fmt.Errorf("build %s: %v\n%s", c.pkg, err, out)
				return
			}
		}
		out, err := exec.Command("go", "list", "-modfile=../../tools/go.mod", "-m", "-f", "{{.Dir}}", "github.com/letsencrypt/pebble/v2").Output()
		if err != nil {
			pebbleErr = fmt.Errorf("locate pebble: %v", err)
			return
		}
		pebbleDir = strings.TrimSpace(string(out))
	})
	if pebbleErr != nil {
		t.Fatal(pebbleErr)
	}
}

type pebble struct {
	*proc
	dir    string // ACME directory URL
	caRoot string // trust root of Pebble's own HTTPS
}

// startPebble runs a mock DNS server answering 127.0.0.1 for every name and
// Pebble validating HTTP-01 challenges on httpPort (really: no shortcut).
func startPebble(t *testing.T, httpPort, tlsPort int) *pebble {
	t.Helper()
	buildPebble(t)
	dnsPort := freeUDPPort(t)
	start(t, "challtestsrv", "challtestsrv",
		"-dnsserver", fmt.Sprintf("127.0.0.1:%d", dnsPort), "-management", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	port, mgmt := freePort(t), freePort(t)
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress": fmt.Sprintf("127.0.0.1:%d", port), "managementListenAddress": fmt.Sprintf("127.0.0.1:%d", mgmt),
		"certificate": filepath.Join(pebbleDir, "test/certs/localhost/cert.pem"),
		"privateKey":  filepath.Join(pebbleDir, "test/certs/localhost/key.pem"),
		"httpPort":    httpPort, "tlsPort": tlsPort, "ocspResponderURL": "", "externalAccountBindingRequired": false,
		"retryAfter": map[string]int{"authz": 1, "order": 1},
	}}
	b, _ := json.Marshal(cfg)
	path := filepath.Join(t.TempDir(), "pebble.json")
	os.WriteFile(path, b, 0o600)
	p := &pebble{
		dir:    fmt.Sprintf("https://localhost:%d/dir", port),
		caRoot: filepath.Join(pebbleDir, "test/certs/pebble.minica.pem"),
	}
	os.Setenv("PEBBLE_VA_NOSLEEP", "1")
	os.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	p.proc = start(t, "pebble", "pebble", "-config", path, "-dnsserver", fmt.Sprintf("127.0.0.1:%d", dnsPort))
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return p
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("pebble did not start:\n%s", p.Output())
	return nil
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	for range 20 {
		port := freePort(t)
		if c, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return port
		}
	}
	t.Fatal("no free UDP port")
	return 0
}

// servedSerial connects to addr with SNI name and returns the serial of
// the certificate served.
func servedSerial(addr, name string) (*big.Int, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr,
		&tls.Config{ServerName: name, InsecureSkipVerify: true}) // Pebble's issuing root is ephemeral
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

// TestACMESharedCertificate: two nodes share certmagic's storage on Azure
// Blob (Azurite). One certificate is ordered from a real ACME server
// (Pebble, validating the challenge against node-b's ports, whichever node
// ordered: distributed solving through the storage), and after a
// switchover the new active serves the same certificate without a second
// order. Once with each challenge type.
func TestACMESharedCertificate(t *testing.T) {
	skipShort(t)
	for _, challenge := range []string{"http-01", "tls-alpn-01"} {
		t.Run(challenge, func(t *testing.T) { testACMESharedCertificate(t, challenge) })
	}
}

func testACMESharedCertificate(t *testing.T, challenge string) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("test-token\n"), 0o600)
	az := azuritetest.Start(t) // the lease and the shared certificate storage
	t.Setenv("BATON_TEST_CS", az.ConnectionString())
	appA, appB := startApp(t, "app-a"), startApp(t, "app-b")
	nb := &batonNode{name: "node-b", http: freePort(t), probe: freePort(t), admin: freePort(t)}
	httpsA, httpsB := freePort(t), freePort(t)
	// Pebble validates through forwarders to node-b's ports, which hold
	// a connection until node-b listens: node-b is started only once
	// node-a holds certmagic's issuance lock, so node-a orders and node-b
	// answers the challenge from the shared storage.
	peb := startPebble(t, lateForwarder(t, nb.http), lateForwarder(t, httpsB))
	const domain = "app.baton.test"
	tlsCfg := func(https int) string {
		return fmt.Sprintf(`[tls]
redirect_http = true
[tls.acme]
domains = [%q]
email = "ops@baton.test"
ca = %q
ca_root = %q
storage = "azblob"
challenges = [%q]
`, domain, peb.dir, peb.caRoot, challenge)
	}
	a := startNodeWith(t, &batonNode{name: "node-a", http: freePort(t), probe: freePort(t), admin: freePort(t)}, httpsA,
		nodeOpts{azurite: az.URL, backendPort: appA.port, tokenFile: token, extra: tlsCfg(httpsA)})
	waitLog(t, a, `"msg":"lock acquired"`, 15*time.Second, `"identifier":"`+domain+`"`)
	b := startNodeWith(t, nb, httpsB, nodeOpts{azurite: az.URL, backendPort: appB.port, tokenFile: token, extra: tlsCfg(httpsB)})
	// Both start together, so either may win the lease; the test holds
	// for both outcomes (Pebble validates on node-b's ports, which are the
	// standby's or the active's depending on the race).
	active := waitActive(t, 15*time.Second, a, b)
	standby, activeApp := b, "app-a"
	if active == b {
		standby, activeApp = a, "app-b"
	}
	activeAddr := fmt.Sprintf("127.0.0.1:%d", active.https)
	standbyAddr := fmt.Sprintf("127.0.0.1:%d", standby.https)

	var serial1 *big.Int
	deadline := time.Now().Add(60 * time.Second)
	for serial1 == nil && time.Now().Before(deadline) {
		if s, err := servedSerial(activeAddr, domain); err == nil && issuedByPebble(t, activeAddr, domain) {
			serial1 = s
		}
		time.Sleep(200 * time.Millisecond)
	}
	if serial1 == nil {
		t.Fatalf("%s never served a certificate from Pebble\n--- pebble ---\n%s", active.name, peb.Output())
	}
	// HTTPS through the active works end to end, and HTTP redirects.
	c := httpsClient(domain, active.https)
	res, err := c.Get(fmt.Sprintf("https://%s:%d/", domain, active.https))
	if err != nil || res.StatusCode != 200 || res.Header.Get("X-Instance") != activeApp || res.ProtoMajor != 2 {
		t.Fatalf("HTTPS request: %v %v", res, err)
	}
	res.Body.Close()

	// The standby loads the certificate from the shared storage (after
	// certmagic's storage lock, which it waited on while the other node
	// ordered): it has it before it is ever promoted.
	deadline = time.Now().Add(30 * time.Second)
	for {
		if s, err := servedSerial(standbyAddr, domain); err == nil && s.Cmp(serial1) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the standby (%s) never loaded the shared certificate", standby.name)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Switch over: the standby serves the same certificate.
	ordersBefore := strings.Count(peb.Output(), "POST /order-plz")
	out := start(t, "step-down", "baton", "step-down", "-admin", fmt.Sprintf("http://127.0.0.1:%d", active.admin), "-token-file", token)
	if code := out.Wait(t, 10*time.Second); code != 0 {
		t.Fatalf("step-down: %s", out.Output())
	}
	waitProbe(t, standby, 200, 5*time.Second)
	serial2, err := servedSerial(standbyAddr, domain)
	if err != nil || serial2.Cmp(serial1) != 0 {
		t.Fatalf("%s serves serial %v (%v), %s served %v: want the same certificate", standby.name, serial2, err, active.name, serial1)
	}
	time.Sleep(500 * time.Millisecond)
	if n := strings.Count(peb.Output(), "Issued certificate serial"); n != 1 {
		t.Errorf("Pebble issued %d certificates, want exactly 1\n%s", n, peb.Output())
	}
	if after := strings.Count(peb.Output(), "POST /order-plz"); after != ordersBefore {
		t.Errorf("%d new orders reached Pebble after the switchover", after-ordersBefore)
	}
	if strings.Contains(b.Output(), "certificate obtained successfully") || !strings.Contains(a.Output(), "certificate obtained successfully") {
		t.Errorf("node-a should have ordered (it held the lock first) and node-b not")
	}
	if want := fmt.Sprintf(`"challenge_type":%q`, challenge); !strings.Contains(a.Output(), want) {
		t.Errorf("the order was not solved with %s: no %s in node-a's log", challenge, want)
	}
	t.Logf("FIGURE ACME %s: one certificate (serial %x), ordered by node-a, the challenge answered by node-b from the shared storage; first active %s; served by both nodes; %d order(s) in all, none after the switchover",
		challenge, serial1, active.name, ordersBefore)
}

// lateForwarder listens on a free port and forwards each connection to
// 127.0.0.1:port, holding it (up to 10 s) until something listens there.
func lateForwarder(t *testing.T, port int) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				var up net.Conn
				for deadline := time.Now().Add(10 * time.Second); up == nil && time.Now().Before(deadline); {
					if up, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err != nil {
						time.Sleep(20 * time.Millisecond)
					}
				}
				if up == nil {
					return
				}
				defer up.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				up.SetDeadline(time.Now().Add(30 * time.Second))
				done := make(chan struct{})
				go func() { io.Copy(up, c); up.(*net.TCPConn).CloseWrite(); close(done) }()
				io.Copy(c, up)
				c.Close() // ends the other copy
				<-done
			})
		}
	})
	return ln.Addr().(*net.TCPAddr).Port
}

func issuedByPebble(t *testing.T, addr, name string) bool {
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true})
	if err != nil {
		return false
	}
	defer c.Close()
	return strings.Contains(c.ConnectionState().PeerCertificates[0].Issuer.CommonName, "Pebble")
}

func httpsClient(name string, port int) *httpClient {
	return newHTTPSClient(name, port)
}
