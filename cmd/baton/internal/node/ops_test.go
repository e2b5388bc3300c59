package node

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/batonproxy/baton/config"
)

// testNode is an in-process node with its own backend and config file.
type testNode struct {
	*Node
	path    string
	logs    *observer.ObservedLogs
	cancel  context.CancelFunc
	done    chan error
	healthy atomic.Bool // what the backend's /healthz answers
}

const testLease = `[lease]
backend = "file"
duration = "15s"
renew_interval = "1s"
renew_deadline = "5s"
retry_interval = "200ms"
candidacy_backoff = "1s"
[lease.file]
path = %q
`

func nodeTOML(name, backend, leaseFile, token, extra string) string {
	return fmt.Sprintf(`node_name = %q
[listen]
http = "127.0.0.1:0"
[backend]
url = %q
[probe]
listen = "127.0.0.1:0"
lb_interval = "1s"
[admin]
listen = "127.0.0.1:0"
token_file = %q
[drain]
advertise_url = "http://127.0.0.1:1"
exit_delay = "50ms"
timeout = "1s"
`, name, backend, token) + fmt.Sprintf(testLease, leaseFile) + extra
}

// healthTOML is one HTTP check. fall = 3: a single slow answer on a loaded
// machine must not demote a node in a test that counts role changes.
func healthTOML(url, interval string) string {
	return fmt.Sprintf(`[[health.check]]
name = "app"
url = %q
interval = %q
timeout = %[2]q
rise = 1
fall = 3
`, url, interval)
}

// startTestNode runs a node of nodeTOML with extra appended; each edit
// rewrites the file's text before it is loaded (for keys nodeTOML sets).
func startTestNode(t *testing.T, name, leaseFile, extra string, edits ...func(string) string) *testNode {
	t.Helper()
	keepRuntime(t)
	tn := &testNode{done: make(chan error, 1)}
	tn.healthy.Store(true)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && !tn.healthy.Load() {
			w.WriteHeader(500)
		}
		io.WriteString(w, name)
	}))
	t.Cleanup(be.Close)
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("tok\n"), 0o600)
	tn.path = filepath.Join(dir, name+".toml")
	body := nodeTOML(name, be.URL, leaseFile, token, healthTOML(be.URL+"/healthz", "100ms")+extra)
	for _, edit := range edits {
		body = edit(body)
	}
	if err := os.WriteFile(tn.path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(tn.path)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	tn.logs = logs
	level := zap.NewAtomicLevelAt(zap.InfoLevel)
	n, err := New(cfg, zap.New(core), "test")
	if err != nil {
		t.Fatal(err)
	}
	n.SetLevel(level)
	tn.Node = n
	ctx, cancel := context.WithCancel(context.Background())
	tn.cancel = cancel
	go func() { tn.done <- n.Run(ctx) }()
	t.Cleanup(tn.stop)
	return tn
}

// replace is an edit for startTestNode.
func replace(old, new string) func(string) string {
	return func(s string) string { return strings.Replace(s, old, new, 1) }
}

func (tn *testNode) stop() {
	tn.cancel()
	<-tn.done
	tn.done <- nil // idempotent
}

func (tn *testNode) probe() int {
	res, err := http.Get("http://" + tn.Addr("probe.listen") + "/probe")
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func scrape(t *testing.T, n *Node) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get("http://" + n.Addr("admin.listen") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

func gauge(fams map[string]*dto.MetricFamily, name, label, value string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	for _, m := range f.Metric {
		match := label == ""
		for _, l := range m.Label {
			if l.GetName() == label && l.GetValue() == value {
				match = true
			}
		}
		if match {
			if m.Gauge != nil {
				return m.Gauge.GetValue()
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
		}
	}
	return -1
}

func TestMetricsFollowFailover(t *testing.T) {
	leaseFile := filepath.Join(t.TempDir(), "lease")
	a := startTestNode(t, "a", leaseFile, "")
	waitFor(t, "a active", 5*time.Second, func() bool { return a.probe() == 200 })
	b := startTestNode(t, "b", leaseFile, "")
	waitFor(t, "b standby", 5*time.Second, func() bool { return b.Status().Role == "standby" })
	if res, err := http.Get("http://" + a.Addr("listen.http") + "/"); err == nil { // one local request
		res.Body.Close()
	}

	fams := scrape(t, a.Node)
	types := map[string]dto.MetricType{
		"baton_role": dto.MetricType_GAUGE, "baton_lease_term": dto.MetricType_GAUGE,
		"baton_lease_acquisitions_total": dto.MetricType_COUNTER, "baton_lease_renew_duration_seconds": dto.MetricType_HISTOGRAM,
		"baton_lease_seconds_since_renew": dto.MetricType_GAUGE, "baton_candidate": dto.MetricType_GAUGE,
		"baton_backend_healthy": dto.MetricType_GAUGE, "baton_health_check_up": dto.MetricType_GAUGE,
		"baton_health_check_duration_seconds": dto.MetricType_HISTOGRAM, "baton_requests_total": dto.MetricType_COUNTER,
		"baton_request_duration_seconds": dto.MetricType_HISTOGRAM, "baton_requests_in_flight": dto.MetricType_GAUGE,
		"baton_drains_total": dto.MetricType_COUNTER, "baton_build_info": dto.MetricType_GAUGE,
		"go_goroutines": dto.MetricType_GAUGE, "process_cpu_seconds_total": dto.MetricType_COUNTER,
	}
	for name, typ := range types {
		if f := fams[name]; f == nil || f.GetType() != typ {
			t.Errorf("family %s missing or not a %s", name, typ)
		}
	}
	if gauge(fams, "baton_role", "role", "active") != 1 || gauge(fams, "baton_role", "role", "standby") != 0 {
		t.Errorf("a's role gauges wrong")
	}
	if gauge(fams, "baton_lease_term", "", "") != 1 {
		t.Errorf("a's term gauge %v", gauge(fams, "baton_lease_term", "", ""))
	}
	if gauge(fams, "baton_requests_total", "path", "local") != 1 {
		t.Errorf("local request count %v", gauge(fams, "baton_requests_total", "path", "local"))
	}

	a.healthy.Store(false) // a's backend fails: b takes over
	waitFor(t, "b active", 5*time.Second, func() bool { return b.probe() == 200 })
	fa, fb := scrape(t, a.Node), scrape(t, b.Node)
	if gauge(fb, "baton_role", "role", "active") != 1 || gauge(fb, "baton_lease_term", "", "") != 2 {
		t.Errorf("b after failover: active=%v term=%v", gauge(fb, "baton_role", "role", "active"), gauge(fb, "baton_lease_term", "", ""))
	}
	if gauge(fa, "baton_role", "role", "active") != 0 || gauge(fa, "baton_lease_losses_total", "reason", "backend_unhealthy") != 1 {
		t.Errorf("a after failover: active=%v losses=%v", gauge(fa, "baton_role", "role", "active"),
			gauge(fa, "baton_lease_losses_total", "reason", "backend_unhealthy"))
	}
	if gauge(fa, "baton_health_check_failures_total", "check", "app") < 1 {
		t.Error("check failure not counted")
	}
}

func TestHooksRunWithEnvironmentAndTimeout(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "hooks.out")
	script := filepath.Join(dir, "hook.sh")
	os.WriteFile(script, []byte("#!/bin/sh\necho \"$BATON_ROLE $BATON_NODE $BATON_TERM $BATON_REASON\" >> "+out+"\n"), 0o755)
	hang := filepath.Join(dir, "hang.sh")
	os.WriteFile(hang, []byte("#!/bin/sh\nsleep 300\n"), 0o755)
	leaseFile := filepath.Join(dir, "lease")
	a := startTestNode(t, "a", leaseFile, fmt.Sprintf("[hooks]\non_active = [%q]\non_standby = [%q]\ntimeout = \"300ms\"\n", script, hang))
	waitFor(t, "a active", 5*time.Second, func() bool { return a.probe() == 200 })
	waitFor(t, "on_active ran", 5*time.Second, func() bool {
		b, _ := os.ReadFile(out)
		return strings.Contains(string(b), "active a 1 lease acquired")
	})
	b := startTestNode(t, "b", leaseFile, "")
	waitFor(t, "b standby", 5*time.Second, func() bool { return b.Status().Role == "standby" })

	// a's on_standby hook hangs: it is killed at its timeout, and the
	// failover is not held up by it.
	a.healthy.Store(false)
	t0 := time.Now()
	// (The hook hangs for 300s: 10s proves it held nothing up, with room
	// for a loaded machine.)
	waitFor(t, "b active", 10*time.Second, func() bool { return b.probe() == 200 })
	t.Logf("failover with a hanging hook: %v", time.Since(t0).Round(time.Millisecond))
	waitFor(t, "hook killed", 10*time.Second, func() bool {
		return a.logs.FilterMessage("hook killed at its timeout").Len() == 1
	})
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	a := startTestNode(t, "a", filepath.Join(dir, "lease"), "")
	waitFor(t, "a active", 5*time.Second, func() bool { return a.probe() == 200 })
	orig, _ := os.ReadFile(a.path)

	// Probe the node continuously: no reload may flip it.
	var flips atomic.Int32
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if a.probe() != 200 {
				flips.Add(1)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	// A valid change applies: the check interval.
	os.WriteFile(a.path, []byte(strings.Replace(string(orig), `interval = "100ms"`, `interval = "250ms"`, 1)), 0o600)
	res, err := a.Reload()
	if err != nil || len(res.Applied) != 1 || res.Applied[0] != "health" || len(res.NotApplied) != 0 {
		t.Fatalf("reload: %+v %v", res, err)
	}
	if got := a.live.Load().Health.Checks[0].Interval.D(); got != 250*time.Millisecond {
		t.Errorf("interval in force %v", got)
	}
	time.Sleep(600 * time.Millisecond) // the new monitor runs its checks

	// An invalid file changes nothing.
	os.WriteFile(a.path, []byte(string(orig)+"\nbogus = 1\n"), 0o600)
	if _, err := a.Reload(); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("invalid reload: %v", err)
	}
	if got := a.live.Load().Health.Checks[0].Interval.D(); got != 250*time.Millisecond {
		t.Errorf("interval after a rejected reload %v", got)
	}

	// A restart-only change is reported and not applied; the log level is.
	changed := strings.Replace(string(orig), `renew_interval = "1s"`, `renew_interval = "2s"`, 1) +
		"[log]\nlevel = \"debug\"\n[peer]\ntimeout = \"300ms\"\n[limits]\nmax_conns = 7\n"
	os.WriteFile(a.path, []byte(changed), 0o600)
	res, err = a.Reload()
	if err != nil || !slices.Equal(res.NotApplied, []string{"lease", "limits", "peer"}) {
		t.Fatalf("restart-only reload: %+v %v", res, err)
	}
	if l := a.live.Load(); l.Peer.Timeout.D() != 500*time.Millisecond || l.Limits.MaxConns != 10000 {
		t.Errorf("restart-only values in force: peer.timeout %v, limits.max_conns %d", l.Peer.Timeout, l.Limits.MaxConns)
	}
	if a.live.Load().Lease.RenewInterval.D() != time.Second || a.level.Level() != zap.DebugLevel {
		t.Errorf("lease renew_interval %v, level %v", a.live.Load().Lease.RenewInterval, a.level.Level())
	}
	close(stop)
	<-watched
	if flips.Load() != 0 {
		t.Errorf("the probe flipped %d times during reloads", flips.Load())
	}
	if st := a.Status(); st.Role != "active" || st.Term != 1 {
		t.Errorf("role %s term %d after reloads", st.Role, st.Term)
	}
	fams := scrape(t, a.Node)
	if gauge(fams, "baton_config_reloads_total", "result", "applied") != 2 || gauge(fams, "baton_config_reloads_total", "result", "rejected") != 1 {
		t.Error("reload counters wrong")
	}
}

// TestReloadRefusesHostileFiles: a reload meets a file that used to take
// the process down (memory quadratic in the nesting depth, or a named file
// read without bound); it is rejected and the active node keeps running.
func TestReloadRefusesHostileFiles(t *testing.T) {
	dir := t.TempDir()
	a := startTestNode(t, "a", filepath.Join(dir, "lease"), "")
	waitFor(t, "a active", 5*time.Second, func() bool { return a.probe() == 200 })
	orig, _ := os.ReadFile(a.path)

	const n = 100000 // 200 KB: 80 KB took 2.4 GB in the decoder
	deep := "x = " + strings.Repeat("[", n) + strings.Repeat("]", n) + "\n"
	cases := []struct{ name, file, want string }{
		{"deep nesting", deep + string(orig), a.path + ":1: nesting deeper than 32 levels"},
		{"huge file", string(orig) + "#" + strings.Repeat("x", 300<<10) + "\n", a.path + ": config file is larger than 256 KiB"},
	}
	if runtime.GOOS != "windows" {
		cases = append(cases,
			struct{ name, file, want string }{"endless CA file",
				string(orig) + "[[health.check]]\nname = \"tls\"\nurl = \"https://127.0.0.1:1/\"\ntls_ca_file = \"/dev/zero\"\n",
				"/dev/zero: larger than 1 MiB"},
			struct{ name, file, want string }{"endless token file",
				strings.Replace(string(orig), "token_file = ", "token_file = \"/dev/zero\"\n#", 1),
				"/dev/zero: larger than 64 KiB"})
	}
	for _, tc := range cases {
		if err := os.WriteFile(a.path, []byte(tc.file), 0o600); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err := a.Reload()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: reload: %v, want an error containing %q", tc.name, err, tc.want)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: reload took %v", tc.name, d)
		}
	}
	if runtime.GOOS != "windows" {
		// The configuration file itself replaced by an endless one.
		os.Remove(a.path)
		if err := os.Symlink("/dev/zero", a.path); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Reload(); err == nil || !strings.Contains(err.Error(), "config file is larger than 256 KiB") {
			t.Errorf("config file /dev/zero: reload: %v", err)
		}
	}
	if st := a.Status(); st.Role != "active" || st.Term != 1 || a.probe() != 200 {
		t.Errorf("role %s term %d probe %d after rejected reloads", st.Role, st.Term, a.probe())
	}
	if got := a.live.Load().Health.Checks; len(got) != 1 {
		t.Errorf("%d health checks in force", len(got))
	}
}

// TestTCPProbe: in probe.mode "tcp" the probe port accepts connections
// only while the node is up.
func TestTCPProbe(t *testing.T) {
	a := startTestNode(t, "a", filepath.Join(t.TempDir(), "lease"), "", replace("[probe]\n", "[probe]\nmode = \"tcp\"\n"))
	dial := func() bool {
		c, err := net.DialTimeout("tcp", a.Addr("probe.listen"), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	waitFor(t, "probe port open while active", 5*time.Second, dial)
	a.healthy.Store(false)
	waitFor(t, "probe port closed when unhealthy", 5*time.Second, func() bool { return !dial() })
	a.healthy.Store(true)
	waitFor(t, "probe port open again", 5*time.Second, dial)
}

// TestCheckURLSecretsAreRedacted: a health check whose URL carries a
// secret in its query shows it neither in /status nor in the log.
func TestCheckURLSecretsAreRedacted(t *testing.T) {
	leaseFile := filepath.Join(t.TempDir(), "lease.json")
	tn := startTestNode(t, "node-a", leaseFile, `[[health.check]]
name = "secret"
url = "http://127.0.0.1:1/healthz?token=s3cret-value&x=1"
interval = "100ms"
timeout = "100ms"
required = false
`)
	var body string
	waitFor(t, "the secret check failed in /status", 5*time.Second, func() bool {
		res, err := http.Get("http://" + tn.Addr("admin.listen") + "/status")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		body = string(b)
		return strings.Contains(body, "token=REDACTED")
	})
	if strings.Contains(body, "s3cret-value") {
		t.Errorf("/status shows the check URL's secret:\n%s", body)
	}
	for _, e := range tn.logs.All() {
		if line := fmt.Sprint(e.Message, e.ContextMap()); strings.Contains(line, "s3cret-value") {
			t.Errorf("a log line shows the check URL's secret: %s", line)
		}
	}
}
