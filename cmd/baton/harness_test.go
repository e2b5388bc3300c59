//go:build unix

package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonproxy/baton/cmd/baton/internal/node"
	"github.com/batonproxy/baton/internal/testproc"
)

// The end-to-end tests run real baton and demoapp processes on loopback.
// TestMain builds both binaries once.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, remove, err := testproc.BuildDemo("../..")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer remove()
	binDir = dir
	return m.Run()
}

// proc is a child process whose output is kept for failure reports.
type proc = testproc.Proc

// start runs a binary from binDir; it is killed at the end of the test and
// its output is printed if the test failed.
func start(t *testing.T, name, bin string, args ...string) *proc {
	t.Helper()
	return testproc.Start(t, name, testproc.Options{}, filepath.Join(binDir, bin), args...)
}

// slack is what a timing assertion allows beyond the figure it checks: the
// suite shares two cores with other packages' tests, and a process-level
// failover crosses several scheduling delays.
const slack = time.Second

func freePort(t *testing.T) int { return testproc.FreePort(t, "127.0.0.1") }

// app is a running demo backend.
type app struct {
	*proc
	port int
}

func startApp(t *testing.T, name string) *app {
	t.Helper()
	port := freePort(t)
	a := &app{port: port}
	a.proc = start(t, name, "demoapp", "-name", name, "-listen", fmt.Sprintf("127.0.0.1:%d", port))
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", port), 5*time.Second)
	return a
}

// waitSlow waits until n /slow requests are waiting in the app.
func (a *app) waitSlow(t *testing.T, n int) {
	t.Helper()
	testproc.WaitSlowRequests(t, fmt.Sprintf("http://127.0.0.1:%d", a.port), n)
}

// restart starts the app again on the same port.
func (a *app) restart(t *testing.T) {
	t.Helper()
	a.Kill()
	a.proc = start(t, a.Name, "demoapp", "-name", a.Name, "-listen", fmt.Sprintf("127.0.0.1:%d", a.port))
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", a.port), 5*time.Second)
}

// batonNode is a running baton process and its ports.
type batonNode struct {
	*proc
	name               string
	http, probe, admin int
	https              int // 0: no HTTPS listener
	configPath         string
}

type nodeOpts struct {
	leaseFile   string
	backendPort int
	tokenFile   string // admin.token_file
	azurite     string // if set: azblob lease at this Azurite URL (connection string in env BATON_TEST_CS); [azure] scheduled_events off (no IMDS here)
	extra       string // appended TOML
	exitDelay   string // drain.exit_delay; default "500ms"
	backoff     string // lease.candidacy_backoff; default "2s"
	retry       string // lease.retry_interval; default "500ms"
	stateDir    string // lease.state_dir with the azblob lease; default a new temporary folder
	failsafe    bool   // lease.failsafe (needs a [peer] table in extra)
	prodChecks  bool   // the health check at production timing (2s interval, 1s timeout) instead of 250ms/200ms
}

// nodeConfig is the TOML for a test node: fast timings within the contract.
func nodeConfig(name string, n *batonNode, o nodeOpts) string {
	leaseCfg := fmt.Sprintf("backend = \"file\"\n[lease.file]\npath = %q\n", o.leaseFile)
	if o.azurite != "" {
		leaseCfg = fmt.Sprintf("backend = \"azblob\"\nstate_dir = %q\nfailsafe = %t\n[lease.azblob]\naccount_url = %q\nauth = \"connection-string\"\nconnection_string_env = \"BATON_TEST_CS\"\ncall_timeout = \"500ms\"\n"+
			"[azure]\nscheduled_events = false\n", o.stateDir, o.failsafe, o.azurite)
	}
	httpsLine := ""
	if n.https != 0 {
		httpsLine = fmt.Sprintf("https = \"127.0.0.1:%d\"", n.https)
	}
	return fmt.Sprintf(`node_name = %[1]q
[listen]
http = "127.0.0.1:%[2]d"
%[10]s
[backend]
url = "http://127.0.0.1:%[3]d"
[probe]
listen = "127.0.0.1:%[4]d"
lb_interval = "1s"
[admin]
listen = "127.0.0.1:%[5]d"
token_file = %[8]q
[lease]
duration = "15s"
renew_interval = "1s"
renew_deadline = "5s"
retry_interval = %[13]q
candidacy_backoff = %[12]q
%[9]s[[health.check]]
name = "app"
type = "http"
url = "http://127.0.0.1:%[3]d/healthz"
interval = "250ms"
timeout = "200ms"
rise = 1
fall = 2
[drain]
timeout = "3s"
exit_delay = %[11]q
[log]
level = "debug"
%[7]s`, name, n.http, o.backendPort, n.probe, n.admin, o.leaseFile, o.extra, o.tokenFile, leaseCfg, httpsLine, cmp.Or(o.exitDelay, "500ms"), cmp.Or(o.backoff, "2s"), cmp.Or(o.retry, "500ms"))
}

func startNode(t *testing.T, name string, o nodeOpts) *batonNode {
	t.Helper()
	return startNodeWith(t, &batonNode{name: name, http: freePort(t), probe: freePort(t), admin: freePort(t)}, 0, o)
}

// startNodeWith starts a node on the ports already set in n, with an HTTPS
// listener on https unless it is 0.
func startNodeWith(t *testing.T, n *batonNode, https int, o nodeOpts) *batonNode {
	t.Helper()
	n.https = https
	n.configPath = filepath.Join(t.TempDir(), n.name+".toml")
	if o.azurite != "" && o.stateDir == "" {
		o.stateDir = filepath.Join(filepath.Dir(n.configPath), "state")
	}
	cfg := nodeConfig(n.name, n, o)
	if o.prodChecks {
		cfg = strings.Replace(cfg, "interval = \"250ms\"\ntimeout = \"200ms\"", "interval = \"2s\"\ntimeout = \"1s\"", 1)
	}
	if err := os.WriteFile(n.configPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	n.proc = start(t, n.name, "baton", "run", "-config", n.configPath)
	waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", n.admin), 10*time.Second)
	return n
}

var quick = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func waitHTTP(t *testing.T, url string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if res, err := quick.Get(url); err == nil {
			res.Body.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not answer within %s", url, limit)
}

// probe returns the probe's status code (0 when unreachable) and body.
func (n *batonNode) probeCode() (int, string) {
	res, err := quick.Get(fmt.Sprintf("http://127.0.0.1:%d/probe", n.probe))
	if err != nil {
		return 0, ""
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, strings.TrimSpace(string(b))
}

func (n *batonNode) status(t *testing.T) node.Status {
	t.Helper()
	res, err := quick.Get(fmt.Sprintf("http://127.0.0.1:%d/status", n.admin))
	if err != nil {
		t.Fatalf("%s status: %v", n.name, err)
	}
	defer res.Body.Close()
	var st node.Status
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		t.Fatalf("%s status: %v", n.name, err)
	}
	return st
}

// get sends one request through the node's main listener.
func (n *batonNode) get(path string) (int, string, error) {
	res, err := quick.Get(fmt.Sprintf("http://127.0.0.1:%d%s", n.http, path))
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), nil
}

// watchProbes samples every node's probe until ctx ends and reports the
// first instant two nodes answered 200 together.
type probeWatch struct {
	mu   sync.Mutex
	dual string
	done chan struct{}
}

func watchProbes(ctx context.Context, nodes ...*batonNode) *probeWatch {
	w := &probeWatch{done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			var up []*batonNode
			for _, n := range nodes {
				if code, _ := n.probeCode(); code == http.StatusOK {
					up = append(up, n)
				}
			}
			// The answers came one after the other: a node may have handed
			// over between them. The ones asked first must still say 200.
			var names []string
			for i, n := range up {
				if i < len(up)-1 {
					if code, _ := n.probeCode(); code != http.StatusOK {
						names = nil
						break
					}
				}
				names = append(names, n.name)
			}
			if len(names) > 1 {
				w.mu.Lock()
				if w.dual == "" {
					w.dual = fmt.Sprintf("%v answered 200 at the same time (%s)", names, time.Now().Format(time.StampMilli))
				}
				w.mu.Unlock()
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return w
}

func (w *probeWatch) check(t *testing.T) {
	t.Helper()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dual != "" {
		t.Errorf("split brain: %s", w.dual)
	}
}

// waitProbe waits until exactly the wanted node answers 200 and returns how
// long that took.
func waitProbe(t *testing.T, n *batonNode, want int, limit time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	for time.Since(t0) < limit {
		if code, _ := n.probeCode(); code == want {
			return time.Since(t0)
		}
		time.Sleep(5 * time.Millisecond)
	}
	code, body := n.probeCode()
	t.Fatalf("%s probe did not answer %d within %s (last: %d %q)", n.name, want, limit, code, body)
	return 0
}

// waitActive waits until one of nodes answers its probe with 200 and
// returns it. Which node wins a race for a fresh lease is not specified:
// tests that start two nodes together must not assume it.
func waitActive(t *testing.T, limit time.Duration, nodes ...*batonNode) *batonNode {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		for _, n := range nodes {
			if code, _ := n.probeCode(); code == 200 {
				return n
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no node became active within %s", limit)
	return nil
}

// httpClient is an HTTPS client that sends every request for name to the
// local port (no DNS), trusting any certificate (test CAs are ephemeral).
type httpClient = http.Client

func newHTTPSClient(name string, port int) *httpClient {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		ForceAttemptHTTP2: true,
		TLSClientConfig:   &tls.Config{ServerName: name, InsecureSkipVerify: true},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", port))
		},
	}}
}

// staticTLSTOML is a [tls] table with the test certificate (for
// baton.test) and without the HTTP redirect; extra goes into the table.
func staticTLSTOML(extra string) string {
	crt, _ := filepath.Abs("../../config/testdata/files/test.crt")
	key, _ := filepath.Abs("../../config/testdata/files/test.key")
	return fmt.Sprintf("[tls]\nredirect_http = false\n%s[[tls.certificate]]\ncert_file = %q\nkey_file = %q\n", extra, crt, key)
}
