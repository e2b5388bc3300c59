//go:build linux

package e2e

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonproxy/baton/internal/azure/schedevents/imdstest"

	"github.com/batonproxy/baton/internal/azure/azuritetest"
	"github.com/batonproxy/baton/internal/testproc"
)

// The timing of every test node (the brief's): the lease contract, the
// health check, the drain. lbInterval is the load balancer's check interval
// (BATON_E2E_LB_INTERVAL, default 1s); drain.exit_delay follows it.
const (
	leaseDuration  = 15 * time.Second
	renewInterval  = time.Second
	renewDeadline  = 5 * time.Second
	retryInterval  = 500 * time.Millisecond
	backoff        = 2 * time.Second
	callTimeout    = 500 * time.Millisecond
	checkInterval  = 250 * time.Millisecond
	checkTimeout   = 200 * time.Millisecond
	checkFall      = 2
	drainTimeout   = 5 * time.Second
	clientTimeout  = 6 * time.Second // above drain.hold (5s): a held request gets its 503
	storageEnvName = "BATON_E2E_STORAGE"
)

// lbInterval is the load balancer's check interval for this run.
func lbInterval(t *testing.T) time.Duration {
	s := os.Getenv("BATON_E2E_LB_INTERVAL")
	if s == "" {
		return time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 100*time.Millisecond || d > 30*time.Second {
		t.Fatalf("BATON_E2E_LB_INTERVAL=%q: want a duration in [100ms, 30s]", s)
	}
	return d
}

// exitDelay must exceed the load balancer's interval plus a margin: the
// stopping node keeps forwarding until HAProxy has seen its 503.
func exitDelay(lb time.Duration) time.Duration { return lb + time.Second }

// quick is for the harness's own one-off requests (probe, status, direct).
var quick = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func httpGet(url string) (code int, hdr http.Header, body string, err error) {
	res, err := quick.Get(url)
	if err != nil {
		return 0, nil, "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b), nil
}

func waitHTTP(t *testing.T, url string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if _, _, _, err := httpGet(url); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not answer within %s", url, limit)
}

// app is a running demo backend on a node's address.
type app struct {
	*proc
	name, ip string
	port     int
}

func startApp(t *testing.T, name, ip string) *app {
	t.Helper()
	a := &app{name: name, ip: ip, port: freePort(t, ip)}
	a.start(t)
	return a
}

func (a *app) start(t *testing.T) {
	t.Helper()
	a.proc = startProc(t, a.name, nil, false, bin("demoapp"), "-name", a.name, "-listen", fmt.Sprintf("%s:%d", a.ip, a.port))
	waitHTTP(t, fmt.Sprintf("http://%s:%d/healthz", a.ip, a.port), 5*time.Second)
}

// waitSlow waits until n /slow requests are waiting in the app.
func (a *app) waitSlow(t *testing.T, n int) {
	t.Helper()
	testproc.WaitSlowRequests(t, fmt.Sprintf("http://%s:%d", a.ip, a.port), n)
}

// batonNode is a running baton process on its own loopback address.
type batonNode struct {
	*proc
	name, ip           string
	http, probe, admin int
	peer               int  // peer.listen port; 0: no peer link
	failsafe           bool // lease.failsafe
	identify           bool // backend.identify_header = "Baton-Node"
	configPath         string
	env                []string

	azure string // its [azure] table; "": the IMDS watcher off (no IMDS here)
}

// nodeConfig is a test node's TOML: the brief's timing, the azblob lease
// with its connection string in an environment variable.
// stateDir is the node's lease.state_dir and peerTOML its [peer] table
// ("" for none).
func nodeConfig(n *batonNode, a *app, accountURL, tokenFile, stateDir, peerTOML string, lb time.Duration) string {
	return fmt.Sprintf(`node_name = %[1]q
[listen]
http = "%[2]s:%[3]d"
[backend]
url = "http://%[4]s:%[5]d"
[probe]
listen = "%[2]s:%[6]d"
lb_interval = %[8]q
lb_threshold = 1
[admin]
listen = "%[2]s:%[7]d"
token_file = %[9]q
[lease]
backend = "azblob"
duration = %[10]q
renew_interval = %[11]q
renew_deadline = %[12]q
retry_interval = %[13]q
candidacy_backoff = %[14]q
state_dir = %[23]q
failsafe = %[25]t
[lease.azblob]
account_url = %[15]q
container = "baton"
blob = "leader"
auth = "connection-string"
connection_string_env = %[16]q
call_timeout = %[17]q
[[health.check]]
name = "app"
type = "http"
url = "http://%[4]s:%[5]d/healthz"
interval = %[18]q
timeout = %[19]q
rise = 1
fall = %[20]d
[drain]
timeout = %[21]q
exit_delay = %[22]q
advertise_url = "http://%[2]s:%[3]d"
[log]
level = "info"
%[24]s`, n.name, n.ip, n.http, a.ip, a.port, n.probe, n.admin, lb.String(), tokenFile,
		leaseDuration.String(), renewInterval.String(), renewDeadline.String(), retryInterval.String(), backoff.String(),
		accountURL, storageEnvName, callTimeout.String(),
		checkInterval.String(), checkTimeout.String(), checkFall,
		drainTimeout.String(), exitDelay(lb).String(), stateDir, peerTOML, n.failsafe)
}

// newNode picks a node's ports; with link, also a peer port.
func newNode(t *testing.T, name, ip string, link bool) *batonNode {
	n := &batonNode{name: name, ip: ip, http: freePort(t, ip), probe: freePort(t, ip), admin: freePort(t, ip)}
	if link {
		n.peer = freePort(t, ip)
	}
	return n
}

// startNode writes n's configuration (with [peer] towards peer when both
// have a peer port) and starts it.
func startNode(t *testing.T, n, peer *batonNode, a *app, accountURL, connString, tokenFile string, lb time.Duration) *batonNode {
	t.Helper()
	dir := t.TempDir()
	n.configPath = filepath.Join(dir, n.name+".toml")
	peerTOML := ""
	if n.peer != 0 && peer != nil && peer.peer != 0 {
		secret := filepath.Join(dir, "peer-secret")
		if err := os.WriteFile(secret, []byte("e2e-peer-secret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		peerTOML = fmt.Sprintf("[peer]\nlisten = \"%s:%d\"\npeers = [\"%s:%d\"]\nsecret_file = %q\ntimeout = \"300ms\"\n",
			n.ip, n.peer, peer.ip, peer.peer, secret)
	}
	azure := cmp.Or(n.azure, "[azure]\nscheduled_events = false\n")
	cfg := nodeConfig(n, a, accountURL, tokenFile, filepath.Join(dir, "state"), peerTOML+azure, lb)
	if n.identify {
		cfg = strings.Replace(cfg, "[backend]\n", "[backend]\nidentify_header = \"Baton-Node\"\n", 1)
	}
	if err := os.WriteFile(n.configPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	n.env = []string{storageEnvName + "=" + connString}
	n.restart(t)
	return n
}

// restart starts the node's process (again) on its configuration: the same
// ports, state directory and lease ID.
func (n *batonNode) restart(t *testing.T) {
	t.Helper()
	n.proc = startProc(t, n.name, n.env, false, bin("baton"), "run", "-config", n.configPath)
	waitHTTP(t, n.adminURL()+"/healthz", 10*time.Second)
}

func (n *batonNode) adminURL() string { return fmt.Sprintf("http://%s:%d", n.ip, n.admin) }
func (n *batonNode) url() string      { return fmt.Sprintf("http://%s:%d", n.ip, n.http) }
func (n *batonNode) addr() string     { return fmt.Sprintf("%s:%d", n.ip, n.http) }

// probeCode returns the probe's status (0 when unreachable) and body.
func (n *batonNode) probeCode() (int, string) {
	code, _, body, err := httpGet(fmt.Sprintf("http://%s:%d/probe", n.ip, n.probe))
	if err != nil {
		return 0, ""
	}
	return code, strings.TrimSpace(body)
}

// nodeStatus is the part of the admin API's /status document the harness
// reads (cmd/baton/internal/node.Status, which it may not import).
type nodeStatus struct {
	Failsafe bool   `json:"failsafe"`
	Node     string `json:"node"`
	Role     string `json:"role"`
	Reason   string `json:"reason"`
	Serving  bool   `json:"serving"`
	Term     uint64 `json:"term"`
	Holder   *struct {
		Node         string `json:"node"`
		AdvertiseURL string `json:"advertise_url"`
		Term         uint64 `json:"term"`
	} `json:"holder"`
	Requests struct {
		InFlight  int64  `json:"in_flight"`
		Local     uint64 `json:"local"`
		Forwarded uint64 `json:"forwarded"`
		Rejected  uint64 `json:"rejected"`
	} `json:"requests"`
}

func (n *batonNode) status(t *testing.T) nodeStatus {
	t.Helper()
	_, _, body, err := httpGet(n.adminURL() + "/status")
	if err != nil {
		t.Fatalf("%s status: %v", n.name, err)
	}
	var st nodeStatus
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("%s status: %v: %q", n.name, err, body)
	}
	return st
}

// waitProbe waits until the node's probe answers want (200 or 503) and
// the body names role, if role is not "".
func (n *batonNode) waitProbe(t *testing.T, want int, role string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if code, body := n.probeCode(); code == want && (role == "" || body == role) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, body := n.probeCode()
	t.Fatalf("%s probe %d %q, want %d %q within %s", n.name, code, body, want, role, limit)
}

// leftActive returns when the node logged its first "role changed" away
// from active (or failsafe) at or after since, rounded up to the next
// millisecond (the log has millisecond timestamps). The node writes that
// line as the elector publishes the demotion, after it fenced itself off
// (and, when voluntary, released the lease), so no request is started
// locally after the returned time.
func (n *batonNode) leftActive(since time.Time) (time.Time, string, bool) {
	for line := range strings.SplitSeq(n.Output(), "\n") {
		if !strings.Contains(line, `"role changed"`) {
			continue
		}
		var rec struct {
			TS     string `json:"ts"`
			Msg    string `json:"msg"`
			From   string `json:"from"`
			To     string `json:"to"`
			Reason string `json:"reason"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != "role changed" || rec.From != "active" && rec.From != "failsafe" {
			continue
		}
		ts, err := time.Parse("2006-01-02T15:04:05.000Z0700", rec.TS)
		if err != nil {
			continue
		}
		ts = ts.Add(time.Millisecond)
		if !ts.Before(since) {
			return ts, rec.To + " (" + rec.Reason + ")", true
		}
	}
	return time.Time{}, "", false
}

// topology is HAProxy in front of node-a (127.0.0.2) and node-b
// (127.0.0.3), each with its demo app, sharing an Azurite lease; node-a is
// active, node-b a standby that knows it, HAProxy sends to node-a only.
type topology struct {
	az    *azuritetest.Azurite
	delay *azuritetest.DelayProxy // between the nodes and Azurite, if asked for
	// storageA and storageB stand between each node and Azurite, if asked
	// for: pausing one cuts that node alone off the storage.
	storageA, storageB *azuritetest.DelayProxy
	a, b               *batonNode
	appA               *app
	appB               *app
	lb                 *haproxy
	lbInt              time.Duration
	token              string
	start              time.Time
	before             uint64 // node-a's term once it is active
}

type topoOpts struct {
	delayProxy   bool // put an azuritetest.DelayProxy between the nodes and Azurite
	peerLink     bool // the nodes talk over the peer link
	failsafe     bool // lease.failsafe on both nodes (with the peer link)
	perNodeProxy bool // a DelayProxy of its own between each node and Azurite
	identify     bool // both nodes name themselves in a Baton-Node answer header (baton drill)

	imds *imdstest.Events // if set: the nodes watch Azure's scheduled events there (VMs "vm-a", "vm-b")
}

func startTopology(t *testing.T, o topoOpts) *topology {
	t.Helper()
	if binDir == "" {
		t.Fatal("binaries not built (TestMain skipped the build under -short)")
	}
	if haproxyErr != nil {
		t.Fatal(haproxyErr)
	}
	top := &topology{lbInt: lbInterval(t), start: time.Now()}
	top.token = filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(top.token, []byte("e2e-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	top.az = azuritetest.Start(t)
	accountURL, cs := top.az.URL, top.az.ConnectionString()
	if o.delayProxy {
		top.delay = azuritetest.NewDelayProxy(t, top.az.Addr())
		accountURL = top.delay.URL("/" + azuritetest.AccountName)
		cs = strings.Replace(cs, top.az.URL, accountURL, 1)
	}
	urlA, csA, urlB, csB := accountURL, cs, accountURL, cs
	if o.perNodeProxy {
		top.storageA = azuritetest.NewDelayProxy(t, top.az.Addr())
		top.storageB = azuritetest.NewDelayProxy(t, top.az.Addr())
		urlA, urlB = top.storageA.URL("/"+azuritetest.AccountName), top.storageB.URL("/"+azuritetest.AccountName)
		csA, csB = strings.Replace(cs, top.az.URL, urlA, 1), strings.Replace(cs, top.az.URL, urlB, 1)
	}
	top.appA, top.appB = startApp(t, "app-a", "127.0.0.2"), startApp(t, "app-b", "127.0.0.3")
	link := o.peerLink || o.failsafe
	a, b := newNode(t, "node-a", "127.0.0.2", link), newNode(t, "node-b", "127.0.0.3", link)
	a.failsafe, b.failsafe = o.failsafe, o.failsafe
	if o.imds != nil {
		a.azure, b.azure = azureTOML(t, o.imds, "vm-a"), azureTOML(t, o.imds, "vm-b")
	}
	a.identify, b.identify = o.identify, o.identify
	top.a = startNode(t, a, b, top.appA, urlA, csA, top.token, top.lbInt)
	top.a.waitProbe(t, 200, "active", 20*time.Second)
	top.b = startNode(t, b, a, top.appB, urlB, csB, top.token, top.lbInt)
	top.b.waitProbe(t, 503, "standby", 20*time.Second)
	top.lb = startHAProxy(t, top.lbInt, []lbServer{
		{Name: "node-a", Addr: top.a.addr(), ProbePort: top.a.probe},
		{Name: "node-b", Addr: top.b.addr(), ProbePort: top.b.probe},
	})
	top.lb.waitServers(t, map[string]string{"node-a": "UP", "node-b": "DOWN"}, 3*top.lbInt+5*time.Second)
	st := top.a.status(t)
	if st.Role != "active" || st.Term == 0 {
		t.Fatalf("node-a: role %s term %d, want active", st.Role, st.Term)
	}
	if sb := top.b.status(t); sb.Holder == nil || sb.Holder.Node != "node-a" || sb.Holder.AdvertiseURL != top.a.url() {
		t.Fatalf("node-b does not know node-a as the holder: %+v", sb.Holder)
	}
	top.before = st.Term
	t.Logf("topology up in %v: haproxy %s, node-a %s active term %d, node-b %s standby, azurite %s",
		time.Since(top.start).Round(time.Millisecond), top.lb.url(), top.a.url(), st.Term, top.b.url(), top.az.URL)
	return top
}

// roleTerm returns the role and term the node reports.
func (n *batonNode) roleTerm(t *testing.T) (string, uint64) {
	st := n.status(t)
	return st.Role, st.Term
}
