//go:build linux

package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"
)

// haproxyConfig is the stand-in for the Azure Load Balancer. Azure's
// semantics, as far as HAProxy can show them:
//   - L4 only (mode tcp): it never parses the application's HTTP;
//   - an HTTP probe on the node's probe port where only 200 is up (http-check
//     expect status 200), one check per interval, one answer enough to change
//     the state (fall 1, rise 1), a probe that does not answer within the
//     interval counts as down;
//   - established connections stay where they are when a server goes down
//     (no on-marked-down action: that is HAProxy's default, and Azure's);
//   - no retry of a failed connect on another server (retries 0): the client
//     sees the failure, as with Azure.
var haproxyConfig = template.Must(template.New("haproxy.cfg").Parse(`# written by baton's e2e harness
global
    log stdout format raw local0 info
    stats socket {{.Sock}} mode 600 level admin
    nbthread 1
    maxconn 2048

defaults
    mode tcp
    log global
    option log-health-checks
    retries 0
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    timeout check {{.CheckTimeout}}ms

frontend lb
    no log
    bind 127.0.0.1:{{.Port}}
    default_backend nodes

backend nodes
    option httpchk
    http-check send meth GET uri /probe ver HTTP/1.1 hdr Host azure-lb-probe
    http-check expect status 200
    default-server inter {{.Interval}}ms fall 1 rise 1
{{- range .Servers}}
    server {{.Name}} {{.Addr}} check port {{.ProbePort}}
{{- end}}
`))

type lbServer struct {
	Name      string
	Addr      string // host:port of the node's main listener
	ProbePort int
}

// haproxy is a running HAProxy in the foreground (-db).
type haproxy struct {
	*proc
	serverNames []string
	port        int
	sock        string
	cfg         string
}

func startHAProxy(t *testing.T, interval time.Duration, servers []lbServer) *haproxy {
	t.Helper()
	if haproxyErr != nil {
		t.Fatal(haproxyErr)
	}
	// A short directory: a unix socket path must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "e2e-lb-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	h := &haproxy{port: freePort(t, "127.0.0.1"), sock: filepath.Join(dir, "admin.sock"), cfg: filepath.Join(dir, "haproxy.cfg")}
	var b strings.Builder
	err = haproxyConfig.Execute(&b, map[string]any{
		"Sock": h.sock, "Port": h.port, "Servers": servers,
		"Interval":     interval.Milliseconds(),
		"CheckTimeout": (interval * 9 / 10).Milliseconds(),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range servers {
		h.serverNames = append(h.serverNames, s.Name)
	}
	if err := os.WriteFile(h.cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	check := startProc(t, "haproxy -c", nil, false, haproxyBin, "-c", "-q", "-f", h.cfg)
	if code := check.Wait(t, 10*time.Second); code != 0 {
		t.Fatalf("haproxy rejects its config (exit %d):\n%s\n%s", code, check.Output(), b.String())
	}
	h.proc = startProc(t, "haproxy", nil, true, haproxyBin, "-db", "-f", h.cfg)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := h.servers(); err == nil {
			return h
		}
		if h.Exited() {
			t.Fatalf("haproxy exited at start:\n%s", h.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("haproxy's stats socket did not answer within 10s:\n%s", h.Output())
	return nil
}

// url is the frontend's URL: what clients use.
func (h *haproxy) url() string { return fmt.Sprintf("http://127.0.0.1:%d", h.port) }

// servers asks the stats socket for each server's state ("UP", "DOWN", ...).
func (h *haproxy) servers() (map[string]string, error) {
	c, err := net.DialTimeout("unix", h.sock, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("show stat\n")); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	col := map[string]int{}
	out := map[string]string{}
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# "); ok {
			for i, name := range strings.Split(rest, ",") {
				col[name] = i
			}
			continue
		}
		f := strings.Split(line, ",")
		if len(col) == 0 || len(f) <= col["status"] || f[col["pxname"]] != "nodes" {
			continue
		}
		if sv := f[col["svname"]]; sv != "BACKEND" {
			out[sv] = f[col["status"]]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(col) == 0 {
		return nil, fmt.Errorf("haproxy stats: no header")
	}
	return out, nil
}

// waitServers waits until HAProxy reports exactly the wanted states.
func (h *haproxy) waitServers(t *testing.T, want map[string]string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	var got map[string]string
	var err error
	for time.Now().Before(deadline) {
		if got, err = h.servers(); err == nil && sameStates(got, want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("haproxy servers %v (err %v), want %v within %s", got, err, want, limit)
}

func sameStates(got, want map[string]string) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// lbEvent is a line of HAProxy's log about a server: a check result that
// changed (check) or a state change.
type lbEvent struct {
	at     time.Time // when the line arrived
	server string
	up     bool
	check  bool
}

// events parses HAProxy's output (each line stamped on arrival; the copies
// HAProxy also writes to stderr, "[WARNING] (pid) : ...", are skipped).
func (h *haproxy) events() []lbEvent {
	var out []lbEvent
	for line := range strings.SplitSeq(h.Output(), "\n") {
		if len(line) <= len(stampLayout)+1 {
			continue
		}
		at, err := time.ParseInLocation(stampLayout, line[:len(stampLayout)], time.Local)
		if err != nil {
			continue
		}
		msg := line[len(stampLayout)+1:]
		var e lbEvent
		switch {
		case strings.HasPrefix(msg, "Health check for server nodes/"):
			e.check = true
			msg = strings.TrimPrefix(msg, "Health check for server nodes/")
		case strings.HasPrefix(msg, "Server nodes/"):
			msg = strings.TrimPrefix(msg, "Server nodes/")
		default:
			continue
		}
		name, rest, _ := strings.Cut(msg, " ")
		e.at, e.server = at, strings.TrimSuffix(name, ",")
		if e.check {
			e.up = strings.Contains(rest, "UP.")
		} else {
			e.up = strings.HasPrefix(rest, "is UP")
		}
		out = append(out, e)
	}
	return out
}

// noServer returns the spans within [from, to] in which HAProxy had no
// server up (servers start up, as HAProxy starts them).
func (h *haproxy) noServer(from, to time.Time) []span {
	up := map[string]bool{}
	for _, s := range h.serverNames {
		up[s] = true
	}
	anyUp := func() bool {
		for _, u := range up {
			if u {
				return true
			}
		}
		return false
	}
	var out []span
	last := from
	add := func(until time.Time) {
		if !anyUp() && until.After(last) {
			out = append(out, span{last, until})
		}
	}
	for _, e := range h.events() {
		if e.check {
			continue
		}
		if e.at.After(from) {
			add(minTime(e.at, to))
			last = maxTime(e.at, from)
		}
		up[e.server] = e.up
	}
	if to.After(last) {
		add(to)
	}
	return out
}

// span is a time interval.
type span struct{ from, to time.Time }

func total(spans []span) time.Duration {
	var d time.Duration
	for _, s := range spans {
		d += s.to.Sub(s.from)
	}
	return d
}

// within counts the requests that failed and started inside one of spans.
func within(rs []Request, spans []span) int {
	n := 0
	for _, r := range rs {
		if r.OK() {
			continue
		}
		for _, s := range spans {
			if !r.Start.Before(s.from) && r.Start.Before(s.to) {
				n++
				break
			}
		}
	}
	return n
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
