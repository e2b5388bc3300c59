//go:build unix

// Command demo runs baton's local demonstration (`make demo`): two instances
// of a stateful app, two baton nodes in front of them sharing a file lease,
// then a backend failure and a planned step-down, narrated as it happens.
// Everything it starts is stopped when it ends, also on Ctrl-C.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/batonproxy/baton/internal/freeport"
)

func main() { os.Exit(run()) }

type nodeProc struct {
	name, app            string
	appPort, http, probe int
	admin, peer          int
	appCmd, batonCmd     *exec.Cmd
}

var (
	start = time.Now()
	dir   string
	bin   = "bin"
	procs []*exec.Cmd
)

func say(format string, args ...any) {
	fmt.Printf("[%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
}

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if dir, err = os.MkdirTemp("", "baton-demo-"); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	defer cleanup()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second) // bounded, whatever happens
	defer cancel()
	if err := demo(ctx); err != nil {
		if ctx.Err() != nil {
			say("interrupted: stopping everything")
		} else {
			say("demo failed: %v (logs in %s)", err, dir)
		}
		return 1
	}
	return 0
}

func demo(ctx context.Context) error {
	token := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(token, []byte("demo-token\n"), 0o600); err != nil {
		return err
	}
	secret := filepath.Join(dir, "peer.secret")
	if err := os.WriteFile(secret, []byte("demo-peer-secret\n"), 0o600); err != nil {
		return err
	}
	ports, err := freeport.Ports(10)
	if err != nil {
		return err
	}
	a := &nodeProc{name: "node-a", app: "app-a", appPort: ports[0], http: ports[1], probe: ports[2], admin: ports[3], peer: ports[8]}
	b := &nodeProc{name: "node-b", app: "app-b", appPort: ports[4], http: ports[5], probe: ports[6], admin: ports[7], peer: ports[9]}
	nodes := []*nodeProc{a, b}

	say("baton demo: two VMs simulated on this host; logs and configs in %s", dir)
	say("each 'VM' runs the stateful demo app (visit counter kept in memory) and a baton node in front of it;")
	say("the nodes compete for one lease (a file here, an Azure blob in production) and only its holder serves;")
	say("they also talk over an authenticated peer link, which makes handovers immediate")
	for _, n := range nodes {
		if n.appCmd, err = startApp(n); err != nil {
			return err
		}
		if err := writeConfig(n, other(nodes, n), token, secret); err != nil {
			return err
		}
	}
	for _, n := range nodes {
		if n.batonCmd, err = spawn(n.name, bin+"/baton", "run", "-config", filepath.Join(dir, n.name+".toml")); err != nil {
			return err
		}
	}
	say("started %s (probe :%d) and %s (probe :%d); waiting for one to win the lease...", a.name, a.probe, b.name, b.probe)
	active, err := waitActive(ctx, nodes, nil, 20*time.Second)
	if err != nil {
		return err
	}
	standby := other(nodes, active)
	showProbes(nodes)
	status(active)

	say("three requests through the active node (a load balancer would send them there):")
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	for range 3 {
		request(client, active)
	}
	say("a request that reaches the standby %s (an established flow, say) is forwarded to the active node,", standby.name)
	say("never served by the standby's own app, so no session is split between two apps:")
	request(client, standby)

	say("--- failure: stopping %s, the backend of the active node ---", active.app)
	active.appCmd.Process.Signal(syscall.SIGTERM)
	t0 := time.Now()
	newActive, err := waitActive(ctx, nodes, active, 20*time.Second)
	if err != nil {
		return err
	}
	say("%s took over %.1fs after the backend died (health check fall + lease retry)", newActive.name, time.Since(t0).Seconds())
	showProbes(nodes)
	status(newActive)
	say("requests now reach %s (a new session: the old one lived in %s's memory):", newActive.app, active.app)
	request(client, newActive)
	request(client, newActive)

	say("--- recovery: %s comes back; %s waits its candidacy back-off, then stands by ---", active.app, active.name)
	if active.appCmd, err = startApp(active); err != nil {
		return err
	}
	if err := waitRole(ctx, active, "standby", 20*time.Second); err != nil {
		return err
	}
	showProbes(nodes)

	waitBackoff(ctx, active)

	say("--- planned switchover: `baton step-down -to %s` on %s ---", active.name, newActive.name)
	t0 = time.Now()
	out, _ := exec.Command(bin+"/baton", "step-down", "-to", active.name, "-admin", fmt.Sprintf("http://127.0.0.1:%d", newActive.admin), "-token-file", token).CombinedOutput()
	took := time.Since(t0)
	say("baton step-down: %s", strings.Join(strings.Fields(string(out)), " "))
	back, err := waitActive(ctx, nodes, newActive, 20*time.Second)
	if err != nil {
		return err
	}
	say("%s is active %.0f ms after the command started: the lease moved straight to it (never free) over the peer link", back.name, float64(took.Microseconds())/1000)
	showProbes(nodes)
	request(client, back)
	request(client, back)

	say("--- crash: `kill -9` of %s's baton process, restarted 1s later (as systemd's Restart=on-failure would) ---", back.name)
	syscall.Kill(-back.batonCmd.Process.Pid, syscall.SIGKILL)
	t0 = time.Now()
	time.Sleep(time.Second)
	if back.batonCmd, err = spawn(back.name, bin+"/baton", "run", "-config", filepath.Join(dir, back.name+".toml")); err != nil {
		return err
	}
	again, err := waitActive(ctx, nodes, nil, 20*time.Second)
	if err != nil {
		return err
	}
	say("%s is active %.1fs after the kill: the new process proved its predecessor dead (host instance lock) and", again.name, time.Since(t0).Seconds())
	say("took over the lease it left behind, instead of waiting 15s for it to expire; the app never stopped,")
	say("so the session in its memory survives (watch the visit counter):")
	request(client, again)
	status(again)

	say("--- stopping %s with SIGTERM: its probe turns 503 at once, it releases the lease and tells its peer ---", again.name)
	again.batonCmd.Process.Signal(syscall.SIGTERM)
	t0 = time.Now()
	for time.Since(t0) < 2*time.Second {
		if code, _ := probe(again); code == http.StatusServiceUnavailable {
			say("%s probe answered 503 %.0f ms after SIGTERM", again.name, float64(time.Since(t0).Microseconds())/1000)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	last, err := waitActive(ctx, nodes, again, 20*time.Second)
	if err != nil {
		return err
	}
	say("%s took over %.0f ms after the SIGTERM", last.name, float64(time.Since(t0).Microseconds())/1000)
	status(last)
	say("demo finished: stopping everything")
	return nil
}

func other(nodes []*nodeProc, n *nodeProc) *nodeProc {
	if nodes[0] == n {
		return nodes[1]
	}
	return nodes[0]
}

func writeConfig(n, peer *nodeProc, token, secret string) error {
	cfg := fmt.Sprintf(`# baton demo config for %[1]s (generated by make demo)
node_name = %[1]q
[listen]
http = "127.0.0.1:%[2]d"
[backend]
url = "http://127.0.0.1:%[3]d"
[probe]
listen = "127.0.0.1:%[4]d"
lb_interval = "1s"
[admin]
listen = "127.0.0.1:%[5]d"
token_file = %[6]q
[lease]
backend = "file"
duration = "15s"
renew_interval = "1s"
renew_deadline = "5s"
retry_interval = "500ms"
candidacy_backoff = "2s"
[lease.file]
path = %[7]q
[[health.check]]
name = "app"
type = "http"
url = "http://127.0.0.1:%[3]d/healthz"
interval = "500ms"
timeout = "400ms"
rise = 2
fall = 2
[drain]
timeout = "5s"
exit_delay = "1s"
[peer]
listen = "127.0.0.1:%[8]d"
peers = ["127.0.0.1:%[9]d"]
secret_file = %[10]q
[log]
format = "console"
`, n.name, n.http, n.appPort, n.probe, n.admin, token, filepath.Join(dir, "lease.json"), n.peer, peer.peer, secret)
	return os.WriteFile(filepath.Join(dir, n.name+".toml"), []byte(cfg), 0o600)
}

func startApp(n *nodeProc) (*exec.Cmd, error) {
	return spawn(n.app, bin+"/demoapp", "-name", n.app, "-listen", fmt.Sprintf("127.0.0.1:%d", n.appPort))
}

// spawn starts a child in its own process group with its output in a log
// file, and remembers it for cleanup.
func spawn(name, path string, args ...string) (*exec.Cmd, error) {
	logf, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w (did `make build` run?)", name, err)
	}
	go func() { cmd.Wait(); logf.Close() }()
	procs = append(procs, cmd)
	return cmd, nil
}

// cleanup stops every child: SIGTERM, then SIGKILL for what is left after 3s.
func cleanup() {
	for _, c := range procs {
		syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(3 * time.Second)
	for _, c := range procs {
		for time.Now().Before(deadline) && syscall.Kill(c.Process.Pid, 0) == nil {
			time.Sleep(50 * time.Millisecond)
		}
		syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	}
	if os.Getenv("DEMO_KEEP") == "" {
		os.RemoveAll(dir)
	}
}

func probe(n *nodeProc) (int, string) {
	c := http.Client{Timeout: time.Second}
	res, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/probe", n.probe))
	if err != nil {
		return 0, "down"
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 256))
	return res.StatusCode, strings.TrimSpace(string(b))
}

func showProbes(nodes []*nodeProc) {
	var parts []string
	for _, n := range nodes {
		code, role := probe(n)
		parts = append(parts, fmt.Sprintf("%s probe=%d (%s)", n.name, code, role))
	}
	say("load balancer view: %s", strings.Join(parts, ", "))
}

// waitActive waits until a node other than not answers its probe 200.
func waitActive(ctx context.Context, nodes []*nodeProc, not *nodeProc, limit time.Duration) (*nodeProc, error) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		for _, n := range nodes {
			if n == not {
				continue
			}
			if code, _ := probe(n); code == http.StatusOK {
				return n, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("no node became active within %s", limit)
}

func waitRole(ctx context.Context, n *nodeProc, role string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if _, r := probe(n); r == role {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not become %s within %s", n.name, role, limit)
}

// waitBackoff waits until n may compete again after a demotion (the
// candidacy back-off keeps a node that just lost the role from flapping).
func waitBackoff(ctx context.Context, n *nodeProc) {
	c := http.Client{Timeout: time.Second}
	res, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/status", n.admin))
	if err != nil {
		return
	}
	defer res.Body.Close()
	var st struct {
		Until time.Time `json:"candidacy_backoff_until"`
	}
	if json.NewDecoder(res.Body).Decode(&st) != nil || time.Until(st.Until) <= 0 {
		return
	}
	say("waiting %.1fs for %s's candidacy back-off (anti-flap after its demotion) to end", time.Until(st.Until).Seconds(), n.name)
	select {
	case <-ctx.Done():
	case <-time.After(time.Until(st.Until) + 100*time.Millisecond):
	}
}

func status(n *nodeProc) {
	out, _ := exec.Command(bin+"/baton", "status", "-admin", fmt.Sprintf("http://127.0.0.1:%d", n.admin)).CombinedOutput()
	say("baton status of %s:", n.name)
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		fmt.Printf("          %s\n", l)
	}
}

func request(c *http.Client, n *nodeProc) {
	res, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", n.http))
	if err != nil {
		say("  GET via %s: %v", n.name, err)
		return
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	say("  GET via %s -> %d %s", n.name, res.StatusCode, strings.TrimSpace(string(b)))
}
