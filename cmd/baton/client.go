package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/batonproxy/baton/cmd/baton/internal/node"
	"github.com/batonproxy/baton/config"
	"github.com/batonproxy/baton/internal/fsutil"
)

const defaultAdmin = "http://127.0.0.1:8082"

// adminFlags are the flags every admin client subcommand takes. The admin
// URL and the token file come, first found: from -admin / -token-file,
// from BATON_ADMIN / BATON_TOKEN_FILE, from the node's configuration file
// (-config, default the same file as `baton run`: its admin.listen and
// admin.token_file), else the default admin address and no token.
type adminFlags struct {
	url       string
	tokenFile string
	config    string
	timeout   time.Duration // 0: 10s
	fromCfg   string        // the configuration file the token file came from
}

func (a *adminFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.url, "admin", os.Getenv("BATON_ADMIN"), "admin API base URL (env BATON_ADMIN; default: admin.listen of -config)")
	fs.StringVar(&a.tokenFile, "token-file", os.Getenv("BATON_TOKEN_FILE"), "file holding the admin token (env BATON_TOKEN_FILE; default: admin.token_file of -config)")
	fs.StringVar(&a.config, "config", "", "the node's configuration file, for its admin address and token file (default "+defaultConfigPath()+" when it exists)")
}

// resolve fills the admin URL and token file from the configuration file
// where the flags and the environment left them empty. A -config that
// cannot be read or is invalid is an error; the default file is used only
// when it exists.
func (a *adminFlags) resolve() error {
	if a.url != "" && a.tokenFile != "" {
		return nil
	}
	path := a.config
	if path == "" {
		if _, err := os.Stat(defaultConfigPath()); err != nil {
			a.url = cmp.Or(a.url, defaultAdmin)
			return nil
		}
		path = defaultConfigPath()
	}
	cfg, err := config.Load(path)
	if err != nil {
		return fmt.Errorf("read the admin address and token from %s: %w", path, err)
	}
	if a.url == "" {
		a.url = adminURL(cfg.Admin.Listen)
	}
	if a.tokenFile == "" && cfg.Admin.TokenFile != "" {
		a.tokenFile, a.fromCfg = cfg.Admin.TokenFile, path
	}
	return nil
}

// adminURL is the URL a client on this host uses for admin.listen: an
// unspecified host is reached on loopback.
func adminURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return defaultAdmin
	}
	if a, err := netip.ParseAddr(host); host == "" || err == nil && a.IsUnspecified() {
		host = "127.0.0.1"
		if err == nil && a.Is6() {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}

// call performs one admin API request with a bounded timeout.
func (a *adminFlags) call(method, path string) (int, []byte, error) {
	return a.callBody(method, path, nil)
}

// callBody is call with a JSON request body (nil: none).
func (a *adminFlags) callBody(method, path string, body []byte) (int, []byte, error) {
	timeout := a.timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(a.url, "/")+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.tokenFile != "" {
		tok, err := fsutil.ReadFileLimit(a.tokenFile, fsutil.MaxSecretFile)
		if err != nil {
			hint := ""
			if errors.Is(err, fs.ErrPermission) {
				hint = " (the admin token is readable by root and the baton group: run the command with sudo)"
			}
			if a.fromCfg != "" {
				return 0, nil, fmt.Errorf("admin token file %s (admin.token_file of %s): %w%s", a.tokenFile, a.fromCfg, err, hint)
			}
			return 0, nil, fmt.Errorf("admin token file %s: %w%s", a.tokenFile, err, hint)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	res, err := (&http.Client{}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	return res.StatusCode, answer, err
}

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("status", stderr)
	var a adminFlags
	a.register(fs)
	asJSON := fs.Bool("json", false, "print the raw JSON document")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if err := a.resolve(); err != nil {
		fmt.Fprintf(stderr, "baton status: %v\n", err)
		return exitUsage
	}
	code, body, err := a.call(http.MethodGet, "/status")
	if err != nil {
		fmt.Fprintf(stderr, "baton status: %v\n", err)
		return exitFailure
	}
	if code != http.StatusOK {
		fmt.Fprintf(stderr, "baton status: admin API answered %d: %s\n", code, strings.TrimSpace(string(body)))
		return exitFailure
	}
	var st node.Status
	if err := json.Unmarshal(body, &st); err != nil {
		fmt.Fprintf(stderr, "baton status: cannot read the answer: %v\n", err)
		return exitFailure
	}
	if *asJSON {
		stdout.Write(body)
	} else {
		printStatus(stdout, st)
	}
	if st.Role == "active" || st.Role == "standby" || st.Role == "failsafe" {
		return exitOK
	}
	return exitFailure
}

func printStatus(w io.Writer, st node.Status) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "node\t%s (%s)\n", st.Node, st.Version)
	fmt.Fprintf(tw, "role\t%s since %s (%s)\n", st.Role, st.Since.Format(time.RFC3339), st.Reason)
	probe := "503"
	if st.Serving {
		probe = "200"
	}
	fmt.Fprintf(tw, "probe\t%s\n", probe)
	fmt.Fprintf(tw, "term\t%d\n", st.Term)
	if st.Holder != nil {
		fmt.Fprintf(tw, "holder\t%s (term %d, %s)\n", st.Holder.Node, st.Holder.Term, st.Holder.AdvertiseURL)
	} else {
		fmt.Fprintf(tw, "holder\tunknown\n")
	}
	if st.LeaseLeftMS > 0 {
		fmt.Fprintf(tw, "lease left\t%s (last renew took %.1f ms)\n", time.Duration(st.LeaseLeftMS)*time.Millisecond, st.RenewMS)
	}
	if st.LeaseError != "" {
		fmt.Fprintf(tw, "lease error\t%s\n", st.LeaseError)
	}
	if st.Failsafe {
		fmt.Fprintf(tw, "failsafe\tserving on the peers' promises since %s (the storage does not answer)\n", st.FailsafeSince.Format(time.RFC3339))
	}
	if st.PromisedTo != "" {
		fmt.Fprintf(tw, "promised\tto stand by for %s (its failsafe)\n", st.PromisedTo)
	}
	health := "healthy"
	if !st.Health.Healthy {
		health = "unhealthy: " + st.Health.Reason
	}
	fmt.Fprintf(tw, "backend\t%s\n", health)
	fmt.Fprintf(tw, "requests\t%d in flight, %d served locally, %d forwarded, %d rejected\n",
		st.Requests.InFlight, st.Requests.Local, st.Requests.Forwarded, st.Requests.Rejected)
	if d := st.LastDrill; d != nil {
		fmt.Fprintf(tw, "last drill\t%s: %s\n", d.RecordedAt.Format(time.RFC3339), drillSummary(*d)) // drill.go
	}
	for _, p := range st.Peers {
		name := p.Node
		if name == "" {
			name = "?"
		}
		if p.Reachable {
			fmt.Fprintf(tw, "peer\t%s at %s: reachable, %s term %d, rtt %.1f ms\n", name, p.Address, p.Role, p.Term, p.RTTMS)
		} else {
			fmt.Fprintf(tw, "peer\t%s at %s: unreachable (%s)\n", name, p.Address, p.LastError)
		}
	}
	for _, e := range st.ScheduledEvents {
		when := "started"
		if !e.NotBefore.IsZero() {
			when = "not before " + e.NotBefore.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "azure event\t%s %s (%s, %s): %s\n", e.Type, e.ID, e.Status, when, cmp.Or(e.Handling, "pending"))
	}
	if st.ScheduledEventsError != "" {
		fmt.Fprintf(tw, "azure events\tmetadata service: %s\n", st.ScheduledEventsError)
	}
	for i, tr := range st.Transitions {
		label := ""
		if i == 0 {
			label = "transitions"
		}
		from := cmp.Or(tr.From, "(start)")
		holder := ""
		if tr.Holder != "" {
			holder = ", holder " + tr.Holder
		}
		fmt.Fprintf(tw, "%s\t%s %s -> %s, term %d%s: %s\n", label, tr.At.Format(time.RFC3339), from, tr.To, tr.Term, holder, tr.Reason)
	}
	tw.Flush()
}

func cmdStepDown(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("step-down", stderr)
	var a adminFlags
	a.register(fs)
	to := fs.String("to", "", "hand the role to this node (by node_name) over the peer link; exit 1 if it does not take it")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "baton step-down: unexpected argument %q (did you mean -to %s?)\n", fs.Arg(0), fs.Arg(0))
		return exitUsage
	}
	if err := a.resolve(); err != nil {
		fmt.Fprintf(stderr, "baton step-down: %v\n", err)
		return exitUsage
	}
	if *to == "" {
		return a.action(http.MethodPost, "/step-down", "step-down", stdout, stderr)
	}
	a.timeout = 30 * time.Second // two peer calls and the storage calls of a handover
	return a.action(http.MethodPost, "/step-down?to="+url.QueryEscape(*to), "step-down", stdout, stderr)
}

func cmdReload(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("reload", stderr)
	var a adminFlags
	a.register(fs)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if err := a.resolve(); err != nil {
		fmt.Fprintf(stderr, "baton reload: %v\n", err)
		return exitUsage
	}
	return a.action(http.MethodPost, "/reload", "reload", stdout, stderr)
}

func cmdMaintenance(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "on" && args[0] != "off") {
		fmt.Fprintln(stderr, "baton maintenance: say on or off")
		return exitUsage
	}
	on := args[0] == "on"
	fs := newFlags("maintenance", stderr)
	var a adminFlags
	a.register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	if err := a.resolve(); err != nil {
		fmt.Fprintf(stderr, "baton maintenance: %v\n", err)
		return exitUsage
	}
	return a.action(http.MethodPost, fmt.Sprintf("/maintenance?on=%t", on), "maintenance", stdout, stderr)
}

func (a *adminFlags) action(method, path, name string, stdout, stderr io.Writer) int {
	code, body, err := a.call(method, path)
	if err != nil {
		fmt.Fprintf(stderr, "baton %s: %v\n", name, err)
		return exitFailure
	}
	var answer map[string]any
	_ = json.Unmarshal(body, &answer)
	if code != http.StatusOK {
		msg := strings.TrimSpace(string(body))
		if e, ok := answer["error"].(string); ok {
			msg = e
		}
		fmt.Fprintf(stderr, "baton %s: %s (HTTP %d)\n", name, msg, code)
		if code == http.StatusUnauthorized || code == http.StatusForbidden {
			fmt.Fprintln(stderr, "hint: pass -token-file with the file named by admin.token_file")
		}
		return exitFailure
	}
	fmt.Fprintf(stdout, "%s\n", strings.TrimSpace(string(body)))
	return exitOK
}
