package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/batonproxy/baton/cmd/baton/internal/node"
	"github.com/batonproxy/baton/config"
	"github.com/batonproxy/baton/proxy"
)

// `baton drill`: a planned switchover measured through the real front end.
// It sends steady requests to the load balancer's URL, steps the active
// node down through its admin API (or hands the role to -to NODE), keeps
// sending, and reports what a user saw.
//
// The step-down must reach the active node's admin API, which listens on
// loopback by default. The drill asks the admin API it was given (-admin,
// else admin.listen of -config, as every client command) for /status: if
// that node is not the active one, it stops and names the active node
// instead of guessing that node's admin address (the lease record holds
// its data address only, and the admin token must not go to an address
// read from the storage). So: run the drill on the active node, or give it
// the active's admin API with -admin.

// Bounds of the drill's flags: the load stays modest and the whole drill
// ends within two minutes.
const (
	drillMaxRate     = 1000
	drillMaxPhases   = 90 * time.Second // -before + -after
	drillMaxTimeout  = 10 * time.Second
	drillStepTimeout = 10 * time.Second // the step-down call (20s with -to: a handover over the peer link)
	defaultIdentify  = "Baton-Node"
)

const drillUsage = `baton drill -url URL [-config FILE | -admin URL -token-file F] [-to NODE]
            [-rate 50] [-before 3s] [-after 5s] [-timeout 1s] [-header NAME] [-json]

Sends GET URL (the load balancer's address of your app) -rate times a second,
steps the active node down after -before (with -to NODE: hands the role to
that node over the peer link), keeps sending for -after, and reports what a
user saw: failed requests (non-2xx, errors, timeouts), the longest time
without a successful answer, and the time from the step-down to the first
answer of the new active. Run it on the active node (or pass -admin with
the active's admin API). The result is kept in that node's /status
(last_drill) and metrics (baton_drill_*).

Exit codes: 0 nothing failed; 1 requests failed, the step-down failed or the
switchover was not seen; 2 usage or configuration error (nothing was sent).

`

type drillFlags struct {
	a       adminFlags
	url     string
	to      string
	rate    int
	before  time.Duration
	after   time.Duration
	timeout time.Duration
	header  string
	json    bool
}

func cmdDrill(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("drill", stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), drillUsage); fs.PrintDefaults() }
	var f drillFlags
	f.a.register(fs)
	fs.StringVar(&f.url, "url", "", "the load balancer's URL of the app, e.g. http://app.example.com/ (required)")
	fs.StringVar(&f.to, "to", "", "hand the role to this node (node_name) over the peer link instead of a plain step-down")
	fs.IntVar(&f.rate, "rate", 50, fmt.Sprintf("requests per second (1..%d)", drillMaxRate))
	fs.DurationVar(&f.before, "before", 3*time.Second, "how long to send before the step-down")
	fs.DurationVar(&f.after, "after", 5*time.Second, "how long to send after the step-down answered")
	fs.DurationVar(&f.timeout, "timeout", time.Second, "a request without a whole answer this long counts as failed (at most 10s)")
	fs.StringVar(&f.header, "header", "", "the answer header naming the serving node (default: backend.identify_header of -config, else "+defaultIdentify+"); X-Instance is the fallback")
	fs.BoolVar(&f.json, "json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "baton drill: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	target, err := f.check()
	if err != nil {
		fmt.Fprintf(stderr, "baton drill: %v\n", err)
		return exitUsage
	}
	if err := f.a.resolve(); err != nil {
		fmt.Fprintf(stderr, "baton drill: %v\n", err)
		return exitUsage
	}
	if f.a.tokenFile == "" {
		fmt.Fprintln(stderr, "baton drill: the step-down needs the admin token: pass -token-file, or -config with admin.token_file")
		return exitUsage
	}
	if f.header == "" {
		f.header = configuredIdentifyHeader(f.a.config)
	}
	st, err := drillPreflight(&f.a, f.to)
	if err != nil {
		fmt.Fprintf(stderr, "baton drill: %v\n", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	return runDrill(ctx, &f, target, st, stdout, stderr)
}

// check validates the flags and returns the URL to send to.
func (f *drillFlags) check() (*url.URL, error) {
	if f.url == "" {
		return nil, errors.New("-url is required: the load balancer's address of the app, e.g. -url http://app.example.com/")
	}
	u, err := url.Parse(f.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("-url %q: want an absolute http:// or https:// URL", f.url)
	}
	switch {
	case f.rate < 1 || f.rate > drillMaxRate:
		return nil, fmt.Errorf("-rate %d: want 1..%d requests per second", f.rate, drillMaxRate)
	case f.before < 0 || f.after <= 0:
		return nil, fmt.Errorf("-before %s -after %s: want -before >= 0 and -after > 0", f.before, f.after)
	case f.before+f.after > drillMaxPhases:
		return nil, fmt.Errorf("-before %s + -after %s: at most %s together", f.before, f.after, drillMaxPhases)
	case f.timeout < 10*time.Millisecond || f.timeout > drillMaxTimeout:
		return nil, fmt.Errorf("-timeout %s: want 10ms..%s", f.timeout, drillMaxTimeout)
	case strings.ContainsAny(f.header, " :\t\r\n"):
		return nil, fmt.Errorf("-header %q: not a header name", f.header)
	}
	return u, nil
}

// configuredIdentifyHeader is backend.identify_header of the node's
// configuration file (-config, else the default file when it exists), else
// the usual name.
func configuredIdentifyHeader(path string) string {
	if path == "" {
		if _, err := os.Stat(defaultConfigPath()); err != nil {
			return defaultIdentify
		}
		path = defaultConfigPath()
	}
	if cfg, err := config.Load(path); err == nil && cfg.Backend.IdentifyHeader != "" {
		return cfg.Backend.IdentifyHeader
	}
	return defaultIdentify
}

// drillPreflight reads the node's status and checks that a drill can run
// against it: it is the active node and serving, and something can take
// over (the -to node, or a standby peer). Peers are looked at again for a
// few seconds (more than the peer link's hello interval), so a peer the
// node has not said hello to yet is not taken for missing.
func drillPreflight(a *adminFlags, to string) (node.Status, error) {
	deadline := time.Now().Add(drillPeerWait)
	for {
		st, retry, err := drillCheckStatus(a, to)
		if err == nil || !retry || time.Now().After(deadline) {
			return st, err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// drillPeerWait is how long the preflight waits for a standby peer to show.
var drillPeerWait = 3 * time.Second

// drillCheckStatus is one look at the status; retry says the problem is
// the peers, which may change.
func drillCheckStatus(a *adminFlags, to string) (st node.Status, retry bool, err error) {
	a.timeout = 5 * time.Second
	code, body, err := a.call(http.MethodGet, "/status")
	if err != nil {
		return st, false, fmt.Errorf("cannot read the node's status from its admin API at %s: %w", a.url, err)
	}
	if code != http.StatusOK {
		return st, false, fmt.Errorf("admin API at %s answered %d: %s", a.url, code, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, false, fmt.Errorf("cannot read the status from %s: %w", a.url, err)
	}
	if st.Role != "active" || !st.Serving {
		holder := "no active node is known"
		if h := st.Holder; h != nil && h.Node != st.Node {
			holder = fmt.Sprintf("the active node is %s (term %d, serving at %s)", h.Node, h.Term, h.AdvertiseURL)
		}
		return st, false, fmt.Errorf("%s (admin API %s) is %s, not the serving active node; %s.\n"+
			"A drill steps the active node down through its own admin API, which listens on loopback by default:\n"+
			"run `baton drill` on the active node, or pass -admin with its admin API URL (and -token-file)", st.Node, a.url, st.Role, holder)
	}
	if to != "" {
		if to == st.Node {
			return st, false, fmt.Errorf("-to %s: that is the active node itself", to)
		}
		if len(st.Peers) == 0 {
			return st, false, fmt.Errorf("-to %s needs the peer link ([peer] on both nodes); without it, drop -to for a plain step-down", to)
		}
		for _, p := range st.Peers {
			if p.Node == to {
				if !p.Reachable || p.Role != "standby" {
					return st, true, fmt.Errorf("-to %s: the peer is not a reachable standby (reachable %v, role %q%s)", to, p.Reachable, p.Role, errSuffix(p.LastError))
				}
				return st, false, nil
			}
		}
		return st, true, fmt.Errorf("-to %s: not a peer of %s (its peers: %s)", to, st.Node, peerNames(st))
	}
	if len(st.Peers) > 0 {
		for _, p := range st.Peers {
			if p.Reachable && p.Role == "standby" {
				return st, false, nil
			}
		}
		return st, true, fmt.Errorf("no peer of %s is a reachable standby (peers: %s): nothing would take over, so no drill", st.Node, peerNames(st))
	}
	return st, false, nil // without the peer link the drill cannot check the standby: it will see
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return ": " + e
}

func peerNames(st node.Status) string {
	var names []string
	for _, p := range st.Peers {
		n := p.Node
		if n == "" {
			n = p.Address
		}
		if !p.Reachable {
			n += " (unreachable)"
		} else if p.Role != "" {
			n += " (" + p.Role + ")"
		}
		names = append(names, n)
	}
	return strings.Join(names, ", ")
}

// runDrill sends, steps down, sends, and reports. It returns the exit code.
func runDrill(ctx context.Context, f *drillFlags, target *url.URL, st node.Status, stdout, stderr io.Writer) int {
	errw := &lockedWriter{w: stderr}
	started := time.Now()
	load := startDrillLoad(target.String(), f.header, "baton-drill/"+version, f.rate, f.timeout)
	prog := startProgress(errw, load, started)
	var problems []string
	var stepAt time.Time
	var stepDur time.Duration
	var answer string

	if drillSleep(ctx, f.before) && waitFirstSuccess(ctx, load, f.timeout+time.Second) {
		prog.phase("step-down")
		path, step := "/step-down", drillStepTimeout
		if f.to != "" {
			path, step = "/step-down?to="+url.QueryEscape(f.to), 2*drillStepTimeout
		}
		f.a.timeout = step
		stepAt = time.Now()
		code, body, err := f.a.call(http.MethodPost, path)
		stepDur = time.Since(stepAt)
		answer = adminAnswer(code, body, err)
		if err != nil || code != http.StatusOK {
			problems = append(problems, "the step-down failed: "+answer)
		}
		prog.phase("after")
		drillSleep(ctx, f.after)
	} else if ctx.Err() == nil {
		problems = append(problems, fmt.Sprintf("no successful answer from %s before the step-down: the service is not up, so %s was not stepped down", redactURL(target), st.Node))
	}
	if ctx.Err() != nil {
		problems = append(problems, "interrupted")
	}
	prog.phase("finishing")
	samples, skipped := load.finish()
	prog.stop()

	base := stepAt
	if base.IsZero() {
		base = time.Now()
	}
	r := analyzeDrill(samples, base)
	r.URL, r.Node, r.To, r.Rate, r.Skipped = redactURL(target), st.Node, f.to, f.rate, skipped
	r.Started, r.Finished, r.StepDown = started, time.Now(), stepAt
	r.StepDownMS, r.StepDownAnswer = ms(stepDur), answer
	r.Problems, r.OK = drillJudge(r, st, f.header, problems, !stepAt.IsZero())

	if !stepAt.IsZero() {
		if err := recordDrill(&f.a, r); err != nil {
			fmt.Fprintf(errw, "baton drill: the result could not be kept on %s: %v\n", st.Node, err)
		}
	}
	if f.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(r)
	} else {
		printDrill(stdout, r, st)
	}
	if r.OK {
		return exitOK
	}
	return exitFailure
}

// drillJudge adds to problems what the measurement shows and says whether the
// drill passed: no request failed, the step-down went through, and the
// new active answered (when the answers name their node at all).
func drillJudge(r node.DrillResult, st node.Status, header string, problems []string, stepped bool) ([]string, bool) {
	ok := len(problems) == 0 && stepped
	if r.Failed > 0 {
		ok = false
		p := fmt.Sprintf("%d of %d requests failed", r.Failed, r.Requests)
		if r.FailedBefore > 0 {
			p += fmt.Sprintf(" (%d of them before the step-down)", r.FailedBefore)
		}
		problems = append(problems, p)
	}
	if r.Skipped > 0 {
		problems = append(problems, fmt.Sprintf("%d requests were not sent: %d were in flight already", r.Skipped, drillMaxInFlight))
	}
	if !stepped {
		return problems, false
	}
	switch {
	case r.OldActive == "" && r.IdentifiedBy == "":
		problems = append(problems, fmt.Sprintf("new active not identifiable: the answers carry neither %s (backend.identify_header) nor %s", header, instanceHeader))
	case r.OldActive == "":
		problems = append(problems, "new active not identifiable: no answer before the step-down named its node")
	case r.NewActive == "":
		ok = false
		problems = append(problems, "no answer from a new active after the step-down: the answers still came from "+r.OldActive)
	}
	if r.IdentifiedBy != "" && r.IdentifiedBy != instanceHeader && r.OldActive != "" {
		if n, _, parsed := proxy.ParseIdentify(r.OldActive); parsed && n != st.Node {
			problems = append(problems, fmt.Sprintf("before the step-down the answers came from %s, not from %s which was stepped down", n, st.Node))
		}
	}
	return problems, ok
}

// adminAnswer is the admin API's answer for a message: its "result" or
// "error", else the body.
func adminAnswer(code int, body []byte, err error) string {
	if err != nil {
		return err.Error()
	}
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	msg := strings.TrimSpace(string(body))
	for _, k := range []string{"result", "error"} {
		if s, ok := m[k].(string); ok {
			msg = s
		}
	}
	if code != http.StatusOK {
		msg = fmt.Sprintf("%s (HTTP %d)", msg, code)
	}
	return msg
}

// recordDrill posts the result to the node's admin API.
func recordDrill(a *adminFlags, r node.DrillResult) error {
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	a.timeout = 5 * time.Second
	code, answer, err := a.callBody(http.MethodPost, "/drill/result", body)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return errors.New(adminAnswer(code, answer, nil))
	}
	return nil
}

// waitFirstSuccess waits (up to limit more) until the load had one
// successful answer: a service that is down is not stepped down.
func waitFirstSuccess(ctx context.Context, l *drillLoad, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		if _, ok, _, _ := l.progress(); ok > 0 {
			return true
		}
		if time.Now().After(deadline) || !drillSleep(ctx, 10*time.Millisecond) {
			return false
		}
	}
}

// drillSleep sleeps d; false when ctx ended first.
func drillSleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// redactURL is u without userinfo, query and fragment: the result is kept
// in /status and logs.
func redactURL(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.Fragment, c.RawFragment, c.ForceQuery = nil, "", "", "", false
	return c.String()
}

func printDrill(w io.Writer, r node.DrillResult, st node.Status) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	step := "a step-down of " + st.Node
	if r.To != "" {
		step = "a handover from " + st.Node + " to " + r.To
	}
	fmt.Fprintf(tw, "drill\t%s through %s (term %d), %d requests/s, %s\n", r.URL, step, st.Term, r.Rate,
		fmtDur(r.Finished.Sub(r.Started)))
	failed := fmt.Sprintf("%d failed", r.Failed)
	if r.Failed > 0 {
		var parts []string
		for code, n := range r.FailedStatuses {
			parts = append(parts, fmt.Sprintf("%s: %d", code, n))
		}
		if r.Timeouts > 0 {
			parts = append(parts, fmt.Sprintf("timeout: %d", r.Timeouts))
		}
		if r.Errors > 0 {
			parts = append(parts, fmt.Sprintf("no answer: %d", r.Errors))
		}
		slices.Sort(parts)
		failed += " (" + strings.Join(parts, ", ") + ")"
		if r.FailedNewConns > 0 {
			failed += fmt.Sprintf(", %d of them on new connections", r.FailedNewConns)
		}
	}
	fmt.Fprintf(tw, "requests\t%d: %d answered 2xx, %s\n", r.Requests, r.Succeeded, failed)
	if r.FirstFailure != "" {
		fmt.Fprintf(tw, "first failure\t%s\n", r.FirstFailure)
	}
	if !r.StepDown.IsZero() {
		gap := time.Duration(r.LongestGapMS * float64(time.Millisecond))
		from := time.Duration(r.GapStartMS * float64(time.Millisecond))
		fmt.Fprintf(tw, "longest gap\t%s without a successful answer (from %s)\n", fmtDur(gap), fmtOffset(from))
		switch {
		case r.NewActiveMS != nil:
			fmt.Fprintf(tw, "new active\t%s (%s), first answer %s after the step-down was sent\n", r.NewActive, r.IdentifiedBy,
				fmtDur(time.Duration(*r.NewActiveMS*float64(time.Millisecond))))
		case r.OldActive == "":
			fmt.Fprintf(tw, "new active\tnot identifiable\n")
		default:
			fmt.Fprintf(tw, "new active\tnone seen (still %s)\n", r.OldActive)
		}
		fmt.Fprintf(tw, "step-down\tanswered in %s: %s\n", fmtDur(time.Duration(r.StepDownMS*float64(time.Millisecond))), r.StepDownAnswer)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(tw, "note\t%s\n", p)
	}
	if r.OK {
		fmt.Fprintf(tw, "result\tOK: no request failed\n")
	} else {
		fmt.Fprintf(tw, "result\tFAILED\n")
	}
	tw.Flush()
}

// drillSummary is a drill result in one line, for `baton status`.
func drillSummary(d node.DrillResult) string {
	s := fmt.Sprintf("%d of %d requests failed, longest gap %s", d.Failed, d.Requests, fmtDur(time.Duration(d.LongestGapMS*float64(time.Millisecond))))
	if d.NewActiveMS != nil {
		s += fmt.Sprintf(", %s answered %s after the step-down", d.NewActive, fmtDur(time.Duration(*d.NewActiveMS*float64(time.Millisecond))))
	}
	if !d.OK {
		s = "FAILED: " + s
	}
	return s
}

// lockedWriter serializes the progress line and the messages on stderr.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// progressLine prints the drill's running counts to stderr: one line
// rewritten in place (\r) on a terminal, a plain line a second otherwise.
type progressLine struct {
	w       *lockedWriter
	tty     bool
	load    *drillLoad
	started time.Time
	cur     atomic.Pointer[string]
	printed atomic.Int64 // when the last line was printed (unix ns)
	quit    chan struct{}
	done    chan struct{}
}

func startProgress(w *lockedWriter, l *drillLoad, started time.Time) *progressLine {
	p := &progressLine{w: w, tty: isTerminal(w.w), load: l, started: started, quit: make(chan struct{}), done: make(chan struct{})}
	before := "before"
	p.cur.Store(&before)
	every := time.Second
	if p.tty {
		every = 200 * time.Millisecond
	}
	go func() {
		defer close(p.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.quit:
				if p.tty {
					fmt.Fprint(p.w, "\r\033[K")
				}
				return
			case <-t.C:
				if time.Since(time.Unix(0, p.printed.Load())) >= every/2 {
					p.print() // not right after a phase change's line
				}
			}
		}
	}()
	return p
}

// phase names what the drill does now; without a terminal the change is
// a line of its own.
func (p *progressLine) phase(s string) {
	if prev := p.cur.Swap(&s); prev != nil && !p.tty {
		p.print()
	}
}

func (p *progressLine) print() {
	done, ok, failed, last := p.load.progress()
	line := fmt.Sprintf("baton drill %5.1fs  %-9s  %d requests, %d ok, %d failed", time.Since(p.started).Seconds(), *p.cur.Load(), done, ok, failed)
	if last != "" {
		line += ", last answer from " + last
	}
	p.printed.Store(time.Now().UnixNano())
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\033[K", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
}

func (p *progressLine) stop() {
	close(p.quit)
	<-p.done
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
