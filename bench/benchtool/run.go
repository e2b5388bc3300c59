//go:build linux

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/batonproxy/baton/internal/freeport"
)

type runOptions struct {
	baton, haproxy, caddy, wrk string
	h2load                     string
	crt, key                   string
	rounds                     int
	duration                   time.Duration
	conns, threads             int
	rate                       int
	rateDuration               time.Duration
	rateRounds                 int
	idleConns                  int
	only                       string
	dir                        string
	keep                       bool
	batonEnv                   stringList
	variants                   stringList
	variantBlocks              string
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func (o *runOptions) flags(fs *flag.FlagSet) {
	fs.StringVar(&o.baton, "baton", "bin/baton", "baton binary")
	fs.StringVar(&o.haproxy, "haproxy", "haproxy", "haproxy binary (\"\" to leave out)")
	fs.StringVar(&o.caddy, "caddy", "caddy", "caddy binary (\"\" to leave out)")
	fs.StringVar(&o.wrk, "wrk", "wrk", "wrk binary")
	fs.StringVar(&o.h2load, "h2load", "h2load", "h2load binary, for the HTTP/2 block (\"\" to leave it out)")
	fs.StringVar(&o.crt, "cert", "config/testdata/files/test.crt", "test certificate")
	fs.StringVar(&o.key, "key", "config/testdata/files/test.key", "its key")
	fs.IntVar(&o.rounds, "rounds", 3, "alternating rounds of wrk runs")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "length of one wrk run")
	fs.IntVar(&o.conns, "conns", 64, "wrk connections")
	fs.IntVar(&o.threads, "threads", 2, "wrk threads")
	fs.IntVar(&o.rate, "rate", 1000, "fixed rate for the latency test (req/s)")
	fs.DurationVar(&o.rateDuration, "rate-duration", 5*time.Second, "length of one fixed-rate run")
	fs.IntVar(&o.rateRounds, "rate-rounds", 3, "alternating rounds of fixed-rate runs (0: skip)")
	fs.IntVar(&o.idleConns, "idle-conns", 1000, "idle keep-alive connections for the memory test (0: skip)")
	fs.StringVar(&o.only, "only", "", "comma-separated numbers (1-9) of the throughput blocks to run, in table order\n"+
		"(7: HTTP/2, 8: POST 1 KiB, 9: POST 64 KiB); \"\" = all")
	fs.StringVar(&o.dir, "dir", "", "work directory (default: a new temporary one)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (configs, logs)")
	fs.Var(&o.batonEnv, "baton-env", "NAME=VALUE added to baton's environment (repeatable), e.g. GOGC=200")
	fs.Var(&o.variants, "variant", "LABEL:NAME=VALUE[,NAME=VALUE]: one more baton with that environment\n"+
		"(or, for names backend.KEY, that [backend] setting; for runtime.KEY, that [runtime] setting;\n"+
		"binary=PATH: another baton binary), measured in the -variant-blocks, fixed-rate and memory rows\n"+
		"(repeatable), e.g. gogc100:GOGC=100, std:backend.fast_path=false, lim:runtime.memory_limit=\"64MiB\"")
	fs.StringVar(&o.variantBlocks, "variant-blocks", "1,8", "comma-separated numbers of the throughput blocks the variants take part in (1, 2, 3, 5, 6, 7, 8, 9)")
}

// target is one thing wrk is pointed at.
type target struct {
	name  string // row label
	svc   *service
	http  string // base URLs, "" when not served
	https string
}

// scenario is one block of the table: the same request against several
// targets.
type scenario struct {
	title   string
	path    string
	tls     bool
	close   bool // a new connection for every request (Connection: close)
	h2      bool // HTTP/2 over TLS, measured with h2load
	body    int  // POST a body of this many bytes (wrk Lua script)
	targets []string
	script  string // the wrk Lua script of a POST block
}

type sample struct {
	rps, p50, p99, cpuUS float64 // p50/p99 in ms, CPU in µs per request
	errs                 int64
}

type world struct {
	o        runOptions
	dir      string
	clkTck   float64
	services []*service
	targets  map[string]*target
	stderr   io.Writer

	sniScript   string   // wrk Lua script resolving baton.test to 127.0.0.1
	variantKeys []string // targets of -variant
}

func runBench(ctx context.Context, o runOptions, stdout, stderr io.Writer) (err error) {
	w := &world{o: o, targets: map[string]*target{}, stderr: stderr, clkTck: 100}
	if out, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && v > 0 {
			w.clkTck = v
		}
	}
	for _, p := range []*string{&w.o.baton, &w.o.crt, &w.o.key} {
		if *p, err = filepath.Abs(*p); err != nil {
			return err
		}
	}
	if _, err := exec.LookPath(o.wrk); err != nil {
		return fmt.Errorf("wrk not found (apt-get install wrk): %w", err)
	}
	var notes []string
	for _, p := range []*string{&w.o.haproxy, &w.o.caddy, &w.o.h2load} {
		if *p == "" {
			continue
		}
		if _, err := exec.LookPath(*p); err != nil {
			notes = append(notes, fmt.Sprintf("%s not installed: its column is left out", *p))
			*p = ""
		}
	}
	if o.dir == "" {
		if w.dir, err = os.MkdirTemp("", "baton-bench-"); err != nil {
			return err
		}
	} else {
		w.dir = o.dir
		if err := os.MkdirAll(w.dir, 0o755); err != nil {
			return err
		}
	}
	defer func() {
		for i := len(w.services) - 1; i >= 0; i-- {
			w.services[i].stop(5 * time.Second)
		}
		if o.keep || err != nil {
			fmt.Fprintf(stderr, "work directory kept: %s\n", w.dir)
		} else {
			os.RemoveAll(w.dir)
		}
	}()
	w.sniScript = filepath.Join(w.dir, "sni.lua")
	if err := os.WriteFile(w.sniScript, []byte(sniLua), 0o644); err != nil {
		return err
	}
	if err := w.startAll(ctx); err != nil {
		return err
	}
	return w.measure(ctx, stdout, notes)
}

// sniLua makes wrk connect to 127.0.0.1 whatever the URL's host, so the
// URL's host can be the certificate's name (sent as SNI and Host).
const sniLua = `wrk.resolve = function(host, service)
  wrk.addrs = wrk.lookup("127.0.0.1", service)
end
`

// postLua makes wrk POST a body of n bytes (wrk adds its Content-Length).
func postLua(n int) string {
	return fmt.Sprintf(`wrk.method = "POST"
wrk.body = string.rep("x", %d)
wrk.headers["Content-Type"] = "application/octet-stream"
`, n)
}

func (w *world) progress(format string, args ...any) {
	fmt.Fprintf(w.stderr, "bench: "+format+"\n", args...)
}

func (w *world) start(name string, env []string, argv ...string) (*service, error) {
	s, err := startService(w.dir, name, env, argv...)
	if err != nil {
		return nil, err
	}
	w.services = append(w.services, s)
	return s, nil
}

func (w *world) startAll(ctx context.Context) error {
	ports, err := freeport.Ports(15 + 4*len(w.o.variants))
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	originPort := ports[0]
	origin, err := w.start("origin", nil, self, "origin", "-listen", fmt.Sprintf("127.0.0.1:%d", originPort))
	if err != nil {
		return err
	}
	w.targets["origin"] = &target{name: "origin (direct)", svc: origin, http: fmt.Sprintf("http://127.0.0.1:%d", originPort)}
	if err := waitHTTP(ctx, origin, w.targets["origin"].http+"/healthz", 10*time.Second); err != nil {
		return err
	}

	// The Go floor (floor.go), on the origin like every proxy.
	floor, err := w.start("floor", nil, self, "floor", "-listen", fmt.Sprintf("127.0.0.1:%d", ports[13]),
		"-tls-listen", fmt.Sprintf("127.0.0.1:%d", ports[14]), "-cert", w.o.crt, "-key", w.o.key,
		"-backend", fmt.Sprintf("127.0.0.1:%d", originPort))
	if err != nil {
		return err
	}
	w.targets["floor"] = &target{name: "Go floor (net/http, no checks)", svc: floor,
		http: fmt.Sprintf("http://127.0.0.1:%d", ports[13]), https: fmt.Sprintf("https://127.0.0.1:%d", ports[14])}
	if err := waitHTTP(ctx, floor, w.targets["floor"].http+"/healthz", 10*time.Second); err != nil {
		return err
	}

	// baton: one node with HTTP and HTTPS, and one with the access log on.
	for i, v := range []struct {
		key    string
		access bool
	}{{"baton", false}, {"baton-al", true}} {
		p := ports[1+4*i:]
		https := p[1]
		if v.access {
			https = 0
		}
		cfg, err := batonConfig(w.dir, v.key, p[0], https, p[2], p[3], originPort, w.o.crt, w.o.key, v.access)
		if err != nil {
			return err
		}
		if out, err := exec.Command(w.o.baton, "check-config", "-config", cfg).CombinedOutput(); err != nil {
			return fmt.Errorf("baton check-config %s: %v\n%s", cfg, err, out)
		}
		s, err := w.start(v.key, w.o.batonEnv, w.o.baton, "run", "-config", cfg)
		if err != nil {
			return err
		}
		t := &target{name: "baton", svc: s, http: fmt.Sprintf("http://127.0.0.1:%d", p[0])}
		if v.access {
			t.name = "baton, access log on"
		} else {
			t.https = fmt.Sprintf("https://127.0.0.1:%d", https)
		}
		w.targets[v.key] = t
		// The probe answers 200 once the node is active.
		if err := waitHTTP(ctx, s, fmt.Sprintf("http://127.0.0.1:%d/probe", p[2]), 30*time.Second); err != nil {
			return err
		}
	}

	for i, v := range w.o.variants {
		label, envs, ok := strings.Cut(v, ":")
		if !ok || label == "" {
			return fmt.Errorf("-variant %q: want LABEL:NAME=VALUE[,NAME=VALUE]", v)
		}
		key := "baton-" + label
		p := ports[15+4*i:]
		var env, backendKeys, runtimeKeys []string
		bin := w.o.baton
		for _, kv := range strings.Split(envs, ",") {
			k, v, ok := strings.Cut(kv, "=")
			switch {
			case ok && strings.HasPrefix(k, "backend."):
				backendKeys = append(backendKeys, strings.TrimPrefix(k, "backend.")+" = "+v)
			case ok && strings.HasPrefix(k, "runtime."):
				runtimeKeys = append(runtimeKeys, strings.TrimPrefix(k, "runtime.")+" = "+v)
			case ok && k == "binary":
				if bin, err = filepath.Abs(v); err != nil {
					return err
				}
			default:
				env = append(env, kv)
			}
		}
		if len(runtimeKeys) > 0 { // a table of its own, after [backend]'s lines
			backendKeys = append(append(backendKeys, "[runtime]"), runtimeKeys...)
		}
		cfg, err := batonConfig(w.dir, key, p[0], p[1], p[2], p[3], originPort, w.o.crt, w.o.key, false, backendKeys...)
		if err != nil {
			return err
		}
		s, err := w.start(key, append(slices.Clone(w.o.batonEnv), env...), bin, "run", "-config", cfg)
		if err != nil {
			return err
		}
		w.targets[key] = &target{name: "baton " + envs, svc: s, http: fmt.Sprintf("http://127.0.0.1:%d", p[0]),
			https: fmt.Sprintf("https://127.0.0.1:%d", p[1])}
		w.variantKeys = append(w.variantKeys, key)
		if err := waitHTTP(ctx, s, fmt.Sprintf("http://127.0.0.1:%d/probe", p[2]), 30*time.Second); err != nil {
			return err
		}
	}

	if w.o.haproxy != "" {
		cfg, err := haproxyConfig(w.dir, ports[9], ports[10], originPort, w.o.crt, w.o.key)
		if err != nil {
			return err
		}
		s, err := w.start("haproxy", nil, w.o.haproxy, "-db", "-f", cfg)
		if err != nil {
			return err
		}
		w.targets["haproxy"] = &target{name: "haproxy", svc: s,
			http: fmt.Sprintf("http://127.0.0.1:%d", ports[9]), https: fmt.Sprintf("https://127.0.0.1:%d", ports[10])}
		if err := waitHTTP(ctx, s, w.targets["haproxy"].http+"/healthz", 10*time.Second); err != nil {
			return err
		}
	}
	if w.o.caddy != "" {
		cfg, err := caddyConfig(w.dir, ports[11], ports[12], originPort, w.o.crt, w.o.key)
		if err != nil {
			return err
		}
		home := filepath.Join(w.dir, "caddy-home")
		env := []string{"HOME=" + home, "XDG_DATA_HOME=" + home, "XDG_CONFIG_HOME=" + home}
		s, err := w.start("caddy", env, w.o.caddy, "run", "--config", cfg)
		if err != nil {
			return err
		}
		w.targets["caddy"] = &target{name: "caddy", svc: s,
			http: fmt.Sprintf("http://127.0.0.1:%d", ports[11]), https: fmt.Sprintf("https://127.0.0.1:%d", ports[12])}
		if err := waitHTTP(ctx, s, w.targets["caddy"].http+"/healthz", 10*time.Second); err != nil {
			return err
		}
		if err := waitHTTP(ctx, s, w.targets["caddy"].https+"/healthz", 10*time.Second); err != nil {
			return err
		}
	}
	if err := waitHTTP(ctx, w.targets["baton"].svc, w.targets["baton"].https+"/healthz", 10*time.Second); err != nil {
		return err
	}
	return nil
}

// proxies are the targets compared, in table order; missing ones are
// skipped.
func (w *world) proxies(names ...string) []string {
	var out []string
	for _, n := range names {
		if _, ok := w.targets[n]; ok {
			out = append(out, n)
		}
	}
	return out
}

type memRow struct {
	idle, conns, peak, end, connsAfter int64 // KiB; -1 unknown
}

func (w *world) measure(ctx context.Context, stdout io.Writer, notes []string) error {
	start := time.Now()
	memProcs := append(w.proxies("baton", "haproxy", "caddy", "baton-al"), w.variantKeys...)
	mem := map[string]*memRow{}

	// Memory at idle, before any load.
	sleep(ctx, 2*time.Second)
	for _, n := range memProcs {
		kb, err := procStatusKB(w.targets[n].svc.pid(), "VmRSS")
		if err != nil {
			return err
		}
		mem[n] = &memRow{idle: kb, conns: -1, connsAfter: -1}
	}
	// Memory with idle keep-alive connections, still before any load (and
	// again after the load, below).
	idleConns := func(after bool) error {
		for _, n := range append(w.proxies("baton", "haproxy", "caddy"), w.variantKeys...) {
			if w.o.idleConns <= 0 {
				break
			}
			w.progress("%d idle keep-alive connections to %s", w.o.idleConns, n)
			addr := strings.TrimPrefix(w.targets[n].http, "http://")
			kb, err := idleRSS(ctx, addr, w.targets[n].svc.pid(), w.o.idleConns, 2*time.Second)
			if err != nil {
				return fmt.Errorf("idle connections to %s: %w", n, err)
			}
			if after {
				mem[n].connsAfter = kb
			} else {
				mem[n].conns = kb
			}
			sleep(ctx, time.Second)
		}
		return nil
	}
	if err := idleConns(false); err != nil {
		return err
	}

	all := []string{"origin", "baton", "haproxy", "caddy", "floor"}
	scenarios := []*scenario{
		{title: "13 B, HTTP/1.1 keep-alive", path: "/small", targets: w.proxies(all...)},
		{title: "13 B, HTTPS keep-alive (TLS reused)", path: "/small", tls: true, targets: w.proxies("baton", "haproxy", "caddy", "floor")},
		{title: "64 KiB, HTTP/1.1 keep-alive", path: "/large", targets: w.proxies(all...)},
		{title: "13 B, access log on vs off (baton)", path: "/small", targets: []string{"baton", "baton-al"}},
		{title: "13 B, new TCP conn per request", path: "/small", close: true, targets: w.proxies("baton", "haproxy", "caddy")},
		{title: "13 B, new TLS conn/request (handshake)", path: "/small", tls: true, close: true, targets: w.proxies("baton", "haproxy", "caddy")},
	}
	scenarios = append(scenarios,
		&scenario{title: "13 B, HTTP/2 over TLS (h2load)", path: "/small", tls: true, h2: true,
			targets: w.proxies("baton", "haproxy", "caddy", "floor")},
		// Bodies: the origin reads each and answers its length.
		&scenario{title: "POST 1 KiB, HTTP/1.1 keep-alive", path: "/post", body: 1 << 10, targets: w.proxies(all...)},
		&scenario{title: "POST 64 KiB, HTTP/1.1 keep-alive", path: "/post", body: 64 << 10, targets: w.proxies(all...)})
	for i, sc := range scenarios {
		if i != 3 && slices.Contains(strings.Split(w.o.variantBlocks, ","), strconv.Itoa(i+1)) {
			sc.targets = append(sc.targets, w.variantKeys...)
		}
	}
	// Numbered in this order whatever is installed, so -only stays the same.
	var keep []*scenario
	for i, sc := range scenarios {
		if (w.o.only == "" || slices.Contains(strings.Split(w.o.only, ","), strconv.Itoa(i+1))) && (!sc.h2 || w.o.h2load != "") {
			keep = append(keep, sc)
		}
	}
	scenarios = keep
	for _, sc := range scenarios {
		if sc.body > 0 {
			sc.script = filepath.Join(w.dir, fmt.Sprintf("post-%d.lua", sc.body))
			if err := os.WriteFile(sc.script, []byte(postLua(sc.body)), 0o644); err != nil {
				return err
			}
		}
	}
	// Warm up every (scenario, target) once, unmeasured.
	w.progress("warm-up")
	for _, sc := range scenarios {
		for _, n := range sc.targets {
			if _, err := w.wrk(ctx, sc, n, time.Second); err != nil {
				return err
			}
		}
	}
	results := map[*scenario]map[string][]sample{}
	for _, sc := range scenarios {
		results[sc] = map[string][]sample{}
	}
	for r := range w.o.rounds {
		w.progress("round %d/%d", r+1, w.o.rounds)
		for _, sc := range scenarios {
			// Rotate the order each round: nobody always goes first.
			order := slices.Clone(sc.targets)
			k := r % len(order)
			order = append(order[k:], order[:k]...)
			for _, n := range order {
				s, err := w.wrk(ctx, sc, n, w.o.duration)
				if err != nil {
					return err
				}
				results[sc][n] = append(results[sc][n], s)
			}
		}
	}

	// Latency at a fixed rate, open loop, alternating.
	rateTargets := append(w.proxies(all...), w.variantKeys...)
	lat := map[string]*rateResult{}
	for _, n := range rateTargets {
		lat[n] = &rateResult{}
	}
	for r := range w.o.rateRounds {
		w.progress("fixed rate round %d/%d", r+1, w.o.rateRounds)
		order := slices.Clone(rateTargets)
		k := r % len(order)
		order = append(order[k:], order[:k]...)
		for _, n := range order {
			res, err := rateLoad(ctx, w.targets[n].http+"/small", w.o.rate, w.o.rateDuration, 64)
			if err != nil {
				return fmt.Errorf("fixed rate against %s: %w", n, err)
			}
			lat[n].lat = append(lat[n].lat, res.lat...)
			lat[n].errs += res.errs
		}
	}
	for _, n := range memProcs {
		pid := w.targets[n].svc.pid()
		mem[n].peak, _ = procStatusKB(pid, "VmHWM")
		mem[n].end, _ = procStatusKB(pid, "VmRSS")
	}
	if err := idleConns(true); err != nil {
		return err
	}
	for _, s := range w.services {
		select {
		case <-s.done:
			return fmt.Errorf("%s exited during the run: %v; see %s/%s.log", s.name, s.err, w.dir, s.name)
		default:
		}
	}

	out := &strings.Builder{}
	w.header(out, notes)
	w.throughputTable(out, scenarios, results)
	w.memoryTable(out, memProcs, mem)
	if w.o.rateRounds > 0 {
		w.latencyTable(out, rateTargets, lat)
	}
	fmt.Fprintf(out, "\ntook %s\n", time.Since(start).Round(time.Second))
	io.WriteString(stdout, out.String())
	return os.WriteFile(filepath.Join(w.dir, "results.txt"), []byte(out.String()), 0o644)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

var (
	reRequests = regexp.MustCompile(`(\d+) requests in`)
	reRPS      = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	reLat      = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$`)
	reNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	reSockErr  = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// wrk runs one wrk measurement and the target's CPU time around it.
func (w *world) wrk(ctx context.Context, sc *scenario, name string, d time.Duration) (sample, error) {
	if sc.h2 {
		return w.h2load(ctx, sc, name, d)
	}
	t := w.targets[name]
	base := t.http
	if sc.tls {
		base = t.https
	}
	pid := t.svc.pid()
	c0, err := cpuTicks(pid)
	if err != nil {
		return sample{}, err
	}
	args := []string{"-t", strconv.Itoa(w.o.threads), "-c", strconv.Itoa(w.o.conns),
		"-d", fmt.Sprintf("%.0fs", d.Seconds()), "--latency"}
	if sc.close {
		args = append(args, "-H", "Connection: close")
	}
	if sc.tls {
		// wrk sends the URL's host as SNI; the test certificate is for
		// baton.test, which Caddy 2.6 insists on (it has no fallback SNI
		// for an unknown name). The script points that name at loopback.
		base = strings.Replace(base, "127.0.0.1", "baton.test", 1)
		args = append(args, "-s", w.sniScript)
	} else if sc.script != "" {
		args = append(args, "-s", sc.script)
	}
	cmd := exec.CommandContext(ctx, w.o.wrk, append(args, base+sc.path)...)
	outb, err := cmd.CombinedOutput()
	if err != nil {
		return sample{}, fmt.Errorf("wrk %s: %v\n%s", base+sc.path, err, outb)
	}
	c1, err := cpuTicks(pid)
	if err != nil {
		return sample{}, err
	}
	out := string(outb)
	var s sample
	m := reRequests.FindStringSubmatch(out)
	r := reRPS.FindStringSubmatch(out)
	if m == nil || r == nil {
		return sample{}, fmt.Errorf("wrk %s: cannot parse:\n%s", base+sc.path, out)
	}
	reqs, _ := strconv.ParseFloat(m[1], 64)
	s.rps, _ = strconv.ParseFloat(r[1], 64)
	for _, l := range reLat.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(l[2], 64)
		switch l[3] {
		case "us":
			v /= 1000
		case "s":
			v *= 1000
		}
		if l[1] == "50" {
			s.p50 = v
		} else {
			s.p99 = v
		}
	}
	if e := reNon2xx.FindStringSubmatch(out); e != nil {
		n, _ := strconv.ParseInt(e[1], 10, 64)
		s.errs += n
	}
	if e := reSockErr.FindStringSubmatch(out); e != nil {
		for _, x := range e[1:] {
			n, _ := strconv.ParseInt(x, 10, 64)
			s.errs += n
		}
	}
	if reqs > 0 {
		s.cpuUS = float64(c1-c0) / w.clkTck / reqs * 1e6
	}
	return s, nil
}

var (
	reH2Requests = regexp.MustCompile(`requests: \d+ total, \d+ started, (\d+) done, \d+ succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
	reH2Status   = regexp.MustCompile(`status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
	reH2Finished = regexp.MustCompile(`finished in ([\d.]+)s, ([\d.]+) req/s`)
)

// h2load measures one target over HTTP/2 with h2load: as many streams as
// wrk has connections (-conns), over -threads connections (a browser uses
// one per site), and the target's CPU time around it. h2load reports no
// latency percentiles: p50 and p99 stay 0 ("-" in the table).
func (w *world) h2load(ctx context.Context, sc *scenario, name string, d time.Duration) (sample, error) {
	t := w.targets[name]
	u, err := url.Parse(t.https)
	if err != nil {
		return sample{}, err
	}
	pid := t.svc.pid()
	c0, err := cpuTicks(pid)
	if err != nil {
		return sample{}, err
	}
	conns := max(w.o.threads, 1)
	// The certificate is for baton.test (SNI, see wrk); --connect-to
	// points that name at the target.
	target := "https://baton.test:" + u.Port() + sc.path
	args := []string{"-t", strconv.Itoa(w.o.threads), "-c", strconv.Itoa(conns), "-m", strconv.Itoa(max(w.o.conns/conns, 1)),
		"-D", fmt.Sprintf("%.0f", d.Seconds()), "--connect-to", u.Host, target}
	outb, err := exec.CommandContext(ctx, w.o.h2load, args...).CombinedOutput()
	if err != nil {
		return sample{}, fmt.Errorf("h2load %s: %v\n%s", target, err, outb)
	}
	c1, err := cpuTicks(pid)
	if err != nil {
		return sample{}, err
	}
	out := string(outb)
	f, r := reH2Finished.FindStringSubmatch(out), reH2Requests.FindStringSubmatch(out)
	if f == nil || r == nil {
		return sample{}, fmt.Errorf("h2load %s: cannot parse:\n%s", target, out)
	}
	var s sample
	s.rps, _ = strconv.ParseFloat(f[2], 64)
	done, _ := strconv.ParseFloat(r[1], 64)
	for _, x := range r[2:] {
		n, _ := strconv.ParseInt(x, 10, 64)
		s.errs += n
	}
	if st := reH2Status.FindStringSubmatch(out); st != nil {
		for _, x := range st[1:] {
			n, _ := strconv.ParseInt(x, 10, 64)
			s.errs += n
		}
	}
	if done == 0 {
		return sample{}, fmt.Errorf("h2load %s: no request done:\n%s", target, out)
	}
	s.cpuUS = float64(c1-c0) / w.clkTck / done * 1e6
	return s, nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianOf(ss []sample, f func(sample) float64) float64 {
	xs := make([]float64, len(ss))
	for i, s := range ss {
		xs[i] = f(s)
	}
	return median(xs)
}

func (w *world) header(out io.Writer, notes []string) {
	ver := func(argv ...string) string {
		b, _ := exec.Command(argv[0], argv[1:]...).CombinedOutput() // wrk -v exits 1
		if len(b) == 0 {
			return "?"
		}
		line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		return line
	}
	fmt.Fprintf(out, "\n== make bench: %s, %d CPUs, %s ==\n", time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), ver("uname", "-r"))
	fmt.Fprintf(out, "baton:   %s (env: %s)\n", ver(w.o.baton, "version"), orNone(w.o.batonEnv.String()))
	if w.o.haproxy != "" {
		fmt.Fprintf(out, "haproxy: %s\n", ver(w.o.haproxy, "-v"))
	}
	if w.o.caddy != "" {
		fmt.Fprintf(out, "caddy:   %s\n", ver(w.o.caddy, "version"))
	}
	fmt.Fprintf(out, "wrk:     %s; -t%d -c%d -d%s --latency; median of %d alternating rounds\n",
		ver(w.o.wrk, "-v"), w.o.threads, w.o.conns, w.o.duration, w.o.rounds)
	if w.o.h2load != "" {
		c := max(w.o.threads, 1)
		fmt.Fprintf(out, "h2load:  %s; -t%d -c%d -m%d -D%s (the HTTP/2 block; it reports no percentiles)\n",
			ver(w.o.h2load, "--version"), w.o.threads, c, max(w.o.conns/c, 1), w.o.duration)
	}
	fmt.Fprintf(out, "origin:  Go net/http (benchtool origin), same for every row\n")
	fmt.Fprintf(out, "CPU/req: the process's utime+stime (/proc/PID/stat) during the run / requests wrk (h2load) completed\n")
	for _, n := range notes {
		fmt.Fprintf(out, "NOTE: %s\n", n)
	}
}

func orNone(s string) string {
	if s == "" {
		return "default GOGC, no GOMEMLIMIT"
	}
	return s
}

func (w *world) throughputTable(out io.Writer, scenarios []*scenario, results map[*scenario]map[string][]sample) {
	fmt.Fprintf(out, "\n%-38s %-32s %10s %8s %8s %11s %7s\n", "scenario", "target", "req/s", "p50 ms", "p99 ms", "CPU µs/req", "errors")
	fmt.Fprintln(out, strings.Repeat("-", 120))
	for _, sc := range scenarios {
		title := sc.title
		row := func(label string, ss []sample) {
			var errs int64
			for _, s := range ss {
				errs += s.errs
			}
			fmt.Fprintf(out, "%-38s %-32s %10.0f %8s %8s %11.1f %7d\n", title, label,
				medianOf(ss, func(s sample) float64 { return s.rps }),
				cell(medianOf(ss, func(s sample) float64 { return s.p50 }), "%.2f"),
				cell(medianOf(ss, func(s sample) float64 { return s.p99 }), "%.2f"),
				medianOf(ss, func(s sample) float64 { return s.cpuUS }), errs)
			title = ""
		}
		for _, n := range sc.targets {
			row(w.targets[n].name, results[sc][n])
		}
		ratio := func(a, b string) {
			sa, sb := results[sc][a], results[sc][b]
			if len(sa) == 0 || len(sb) == 0 {
				return
			}
			q := func(f func(sample) float64) float64 { return medianOf(sa, f) / medianOf(sb, f) }
			fmt.Fprintf(out, "%-38s %-32s %10s %8s %8s %11s\n", "", "  ratio "+a+"/"+b,
				cell(q(func(s sample) float64 { return s.rps }), "%.2fx"), cell(q(func(s sample) float64 { return s.p50 }), "%.2fx"),
				cell(q(func(s sample) float64 { return s.p99 }), "%.2fx"), cell(q(func(s sample) float64 { return s.cpuUS }), "%.2fx"))
		}
		if slices.Contains(sc.targets, "baton-al") {
			ratio("baton-al", "baton")
			a := medianOf(results[sc]["baton-al"], func(s sample) float64 { return s.cpuUS })
			b := medianOf(results[sc]["baton"], func(s sample) float64 { return s.cpuUS })
			fmt.Fprintf(out, "%-38s %-32s %+.1f µs/req CPU\n", "", "  access log cost", a-b)
		} else {
			ratio("baton", "haproxy")
			ratio("baton", "caddy")
			ratio("baton", "floor")
			ratio("floor", "haproxy")
			for _, v := range w.variantKeys {
				if slices.Contains(sc.targets, v) {
					ratio(v, "baton")
					ratio(v, "haproxy")
					ratio(v, "caddy")
				}
			}
		}
		fmt.Fprintln(out)
	}
}

// cell formats v, or "-" when it is not a measurement (0: not reported; NaN
// or Inf: a ratio of those).
func cell(v float64, format string) string {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

func (w *world) memoryTable(out io.Writer, procs []string, mem map[string]*memRow) {
	mb := func(kb int64) string {
		if kb < 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f", float64(kb)/1024)
	}
	conns := fmt.Sprintf("+%d conns", w.o.idleConns)
	fmt.Fprintf(out, "%-32s %9s %12s %13s %11s %12s\n", "memory: RSS in MB", "idle", conns, "peak (HWM)", "after load", conns)
	fmt.Fprintln(out, strings.Repeat("-", 94))
	for _, n := range procs {
		m := mem[n]
		fmt.Fprintf(out, "%-32s %9s %12s %13s %11s %12s\n", w.targets[n].name, mb(m.idle), mb(m.conns), mb(m.peak), mb(m.end), mb(m.connsAfter))
	}
	fmt.Fprintf(out, "(idle: 2 s after start, before any load; +conns: %d idle keep-alive connections, one GET each, 2 s idle;\n"+
		" peak: VmHWM after all the load; after load: at the end, then again with the idle connections)\n", w.o.idleConns)
}

func (w *world) latencyTable(out io.Writer, targets []string, lat map[string]*rateResult) {
	fmt.Fprintf(out, "\nlatency at a fixed %d req/s (open loop, 64 keep-alive conns, %d × %s per target, pooled)\n",
		w.o.rate, w.o.rateRounds, w.o.rateDuration)
	fmt.Fprintf(out, "%-32s %8s %7s %9s %9s %9s %9s %14s %16s\n", "target", "n", "errors", "p50 ms", "p99 ms", "p99.9 ms", "max ms",
		"p99 − origin", "p99.9 − origin")
	fmt.Fprintln(out, strings.Repeat("-", 123))
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	var origin99, origin999 time.Duration
	if r := lat["origin"]; r != nil {
		origin99, origin999 = pct(r.lat, 99), pct(r.lat, 99.9)
	}
	for _, n := range targets {
		r := lat[n]
		p99, p999 := pct(r.lat, 99), pct(r.lat, 99.9)
		diff, diff9 := "-", "-"
		if n != "origin" && lat["origin"] != nil {
			diff, diff9 = fmt.Sprintf("%+.3f ms", ms(p99-origin99)), fmt.Sprintf("%+.3f ms", ms(p999-origin999))
		}
		fmt.Fprintf(out, "%-32s %8d %7d %9.3f %9.3f %9.3f %9.3f %14s %16s\n", w.targets[n].name, len(r.lat), r.errs,
			ms(pct(r.lat, 50)), ms(p99), ms(p999), ms(pct(r.lat, 100)), diff, diff9)
	}
}
