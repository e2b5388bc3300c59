package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"
)

// Timing is the timing contract of a configuration: the values that decide
// how fast a failover happens, the expected worst-case failover times, and
// warnings about unsafe or slow combinations. `baton check-config` prints it.
type Timing struct {
	LeaseDuration    time.Duration
	RenewInterval    time.Duration
	RenewDeadline    time.Duration
	RetryInterval    time.Duration
	CandidacyBackoff time.Duration
	CallTimeout      time.Duration // azblob only; 0 for the file lease
	LBInterval       time.Duration
	LBThreshold      int
	ExitDelay        time.Duration
	DrainTimeout     time.Duration
	DrainHold        time.Duration

	// HealthDetect is how long the slowest required check takes, at worst,
	// to declare the backend down: fall × interval + timeout.
	HealthDetect time.Duration
	HealthCheck  string // the check that gives HealthDetect; "" if none is required

	// PlannedFailover ≈ retry_interval + lb_interval: step-down or stop,
	// until the load balancer sends new flows to the new active. Explicit
	// 200/503 answers take effect at the next probe; lb_threshold only
	// counts timeouts, so it is not part of this.
	PlannedFailover time.Duration
	// CrashFailover ≈ duration + retry_interval + lb_interval: the active
	// dies without releasing the lease (at least lb_interval × lb_threshold
	// if the whole VM is gone and probes time out).
	CrashFailover time.Duration
	// UnhealthyFailover ≈ HealthDetect + retry_interval + lb_interval: the
	// active's backend fails, the active releases the lease, a healthy
	// standby takes it (plus the release call itself, at most call_timeout).
	UnhealthyFailover time.Duration
	// FenceAfter is renew_deadline: an active that cannot renew (storage
	// unreachable, process frozen) serves no request once this much time
	// has passed since the send time of its last successful renew.
	FenceAfter time.Duration
	// SafetyMargin is duration - renew_deadline: how long before the lease
	// can pass to another node the old active has stopped serving.
	SafetyMargin time.Duration
	// HealthRise is how long a healthy backend takes to be declared healthy
	// after start: (rise-1) × interval of the slowest required
	// check.
	HealthRise time.Duration
	// RestartFailover ≈ HealthRise + retry_interval + lb_interval, after the
	// service manager restarted a crashed process: it takes its own lease
	// over instead of waiting for the expiry.
	RestartFailover time.Duration
	// Peers is the number of peers on the link; 0 means no link.
	Peers int
	// Failsafe is lease.failsafe.
	Failsafe bool

	Warnings []string
}

// Timing computes the timing contract of a loaded configuration.
func (c *Config) Timing() Timing {
	l, p, d := c.Lease, c.Probe, c.Drain
	t := Timing{
		LeaseDuration:    l.Duration.D(),
		RenewInterval:    l.RenewInterval.D(),
		RenewDeadline:    l.RenewDeadline.D(),
		RetryInterval:    l.RetryInterval.D(),
		CandidacyBackoff: l.CandidacyBackoff.D(),
		LBInterval:       p.LBInterval.D(),
		LBThreshold:      p.LBThreshold,
		ExitDelay:        d.ExitDelay.D(),
		DrainTimeout:     d.Timeout.D(),
		DrainHold:        d.Hold.D(),
	}
	if l.Backend == "azblob" {
		t.CallTimeout = l.AzBlob.CallTimeout.D()
	}
	for _, ch := range c.Health.Checks {
		if ch.Required != nil && !*ch.Required {
			continue
		}
		if det := time.Duration(ch.Fall)*ch.Interval.D() + ch.Timeout.D(); det > t.HealthDetect || t.HealthCheck == "" {
			t.HealthDetect, t.HealthCheck = det, ch.Name
		}
		t.HealthRise = max(t.HealthRise, time.Duration(max(ch.Rise-1, 0))*ch.Interval.D())
	}
	lbDown := t.LBInterval * time.Duration(max(t.LBThreshold, 1))
	t.PlannedFailover = t.RetryInterval + t.LBInterval
	t.CrashFailover = max(t.LeaseDuration+t.RetryInterval+t.LBInterval, lbDown)
	if t.HealthCheck != "" {
		t.UnhealthyFailover = t.HealthDetect + t.CallTimeout + t.RetryInterval + t.LBInterval
	}
	t.RestartFailover = t.HealthRise + t.RetryInterval + t.LBInterval
	if c.Peer.Listen != "" {
		t.Peers = len(c.Peer.Peers)
	}
	t.Failsafe = c.Lease.Failsafe
	t.FenceAfter = t.RenewDeadline
	t.SafetyMargin = t.LeaseDuration - t.RenewDeadline
	t.Warnings = c.warnings(t)
	return t
}

func (c *Config) warnings(t Timing) []string {
	var w []string
	add := func(format string, args ...any) { w = append(w, fmt.Sprintf(format, args...)) }
	d := func(v time.Duration) string { return Duration(v).String() }
	w = append(w, c.LoadWarnings...)

	if c.Lease.Backend == "file" {
		add("lease.backend = \"file\": the file lease coordinates processes on ONE host only; it cannot coordinate two VMs (use \"azblob\" for that).")
	}
	if margin := max(2*time.Second, 2*t.CallTimeout); t.SafetyMargin < margin {
		add("lease.duration - lease.renew_deadline is only %s: a frozen process or a fast-running clock leaves little time between the active's own deadline and the lease passing to another node; keep at least %s.", d(t.SafetyMargin), d(margin))
	}
	if t.RenewInterval > 0 && t.RenewDeadline/t.RenewInterval < 3 {
		add("lease.renew_deadline %s allows only %d renew attempts every %s: one slow storage call away from a demotion.", d(t.RenewDeadline), t.RenewDeadline/t.RenewInterval, d(t.RenewInterval))
	}
	if t.CandidacyBackoff == 0 {
		add("lease.candidacy_backoff is 0: a node that just demoted itself may take the lease straight back (flapping).")
	}
	if t.RetryInterval > 5*time.Second {
		add("lease.retry_interval %s is slow: a planned switchover waits up to one retry interval for the standby to take the lease.", d(t.RetryInterval))
	}
	switch {
	case t.LBInterval > 15*time.Second:
		add("probe.lb_interval %s is slow: every failover waits up to one probe interval for the load balancer to notice (Azure allows 5s).", d(t.LBInterval))
	case t.LBInterval < 5*time.Second:
		add("probe.lb_interval %s is below the Azure Load Balancer minimum of 5s: the expected failover times assume the load balancer really probes this often.", d(t.LBInterval))
	}
	if t.LBThreshold > 1 {
		add("probe.lb_threshold %d only matters when probes time out (a dead VM, a network cut): a 200 or 503 answer takes effect at the next probe. It lengthens the default drain.exit_delay.", t.LBThreshold)
	}
	if lbDown := t.LBInterval * time.Duration(max(t.LBThreshold, 1)); t.ExitDelay < lbDown {
		add("drain.exit_delay %s is shorter than probe.lb_interval × probe.lb_threshold (%s): a stopping node may close its listeners while the load balancer still sends it new connections, which then fail.", d(t.ExitDelay), d(lbDown))
	}
	if t.DrainHold < t.RetryInterval {
		add("drain.hold %s is shorter than lease.retry_interval (%s): during a switchover, requests may be answered 503 before the new active appears.", d(t.DrainHold), d(t.RetryInterval))
	}
	if stop := t.ExitDelay + t.DrainTimeout; stop > 90*time.Second {
		add("drain.exit_delay + drain.timeout = %s: longer than the 90s a service manager usually waits for a stop (systemd's default TimeoutStopSec); raise that limit or the process may be killed mid-drain.", d(stop))
	}
	if t.CrashFailover > 60*time.Second {
		add("a crashed active is replaced only after about %s, no better than a 60s lease with a 15s probe; lower lease.duration or probe.lb_interval.", d(t.CrashFailover))
	}
	if t.HealthCheck == "" {
		add("no required health check: a failing backend never moves the lease to another node.")
	} else if t.HealthDetect > 60*time.Second {
		add("a failing backend is noticed only after about %s (fall × interval + timeout of check %q).", d(t.HealthDetect), t.HealthCheck)
	}
	for _, ch := range c.Health.Checks {
		if ch.TLSSkipVerify {
			add("health check %q has tls_skip_verify = true: its certificate is not verified.", ch.Name)
		}
	}
	if host, _, err := net.SplitHostPort(c.Admin.Listen); err == nil && !isLoopback(host) {
		add("admin.listen %q is not a loopback address: /status and /metrics are reachable from the network (actions still need the token).", c.Admin.Listen)
	}
	if c.Lease.Backend == "azblob" && c.Drain.Standby == "forward" {
		if u, err := url.Parse(c.Drain.AdvertiseURL); err == nil && isLoopback(u.Hostname()) {
			add("drain.advertise_url %q is a loopback address: nodes on other machines cannot forward requests to it; set drain.advertise_url (for example \"http://{{ GetPrivateIP }}:80\").", c.Drain.AdvertiseURL)
		}
	}
	if t.Peers > 0 && c.Peer.Timeout.D() >= t.RetryInterval {
		add("peer.timeout %s is not shorter than lease.retry_interval (%s): a peer that does not answer delays a standby's next attempt.", c.Peer.Timeout, d(t.RetryInterval))
	}
	if c.Lease.Backend == "azblob" {
		if u, err := url.Parse(c.Lease.AzBlob.AccountURL); err == nil && u.Scheme == "http" && !isLoopback(u.Hostname()) {
			add("lease.azblob.account_url uses plain http to a remote host: storage traffic is not encrypted.")
		}
	}
	return w
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// String renders the timing contract as a small table.
func (t Timing) String() string {
	d := func(v time.Duration) string { return Duration(v).String() }
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	row := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")) }

	row("timing contract")
	row("  lease duration", d(t.LeaseDuration), "the storage service's lock expiry")
	row("  renew every", d(t.RenewInterval), fmt.Sprintf("each attempt bounded by %s", orNone(t.CallTimeout)))
	row("  renew deadline", d(t.RenewDeadline), fmt.Sprintf("active stops serving %s before the lease can pass on", d(t.SafetyMargin)))
	row("  retry interval", d(t.RetryInterval), "standbys try to acquire this often")
	row("  candidacy back-off", d(t.CandidacyBackoff), "wait after a demotion before competing again")
	row("  load balancer probe", d(t.LBInterval), fmt.Sprintf("threshold %d (counts timeouts only)", t.LBThreshold))
	row("  exit delay", d(t.ExitDelay), "listeners stay open after the probe turned 503")
	row("  drain timeout", d(t.DrainTimeout), "in-flight requests may finish")
	row("")
	row("expected worst-case failover")
	row("  planned switchover", "≈ "+d(t.PlannedFailover), "retry_interval + lb_interval; no failed request")
	row("  active process killed", "≈ "+d(t.CrashFailover), "duration + retry_interval + lb_interval (VM lost, or no restart)")
	row("  active process restarted", "≈ restart + "+d(t.RestartFailover), "takes its own lease over: health rise + retry_interval + lb_interval")
	if t.HealthCheck != "" {
		row("  backend unhealthy", "≈ "+d(t.UnhealthyFailover), fmt.Sprintf("fall × interval + timeout (check %q) + release + retry_interval + lb_interval", t.HealthCheck))
	} else {
		row("  backend unhealthy", "never", "no required health check")
	}
	row("  frozen or cut-off active", d(t.FenceAfter), "serves no request this long after its last successful renew")
	if t.Failsafe {
		row("  storage outage", "none", "failsafe: the active keeps serving while every peer promises to stand by (else as above)")
	} else {
		row("  storage outage", d(t.FenceAfter), "the active demotes at its renew deadline; nobody serves until the storage answers (lease.failsafe = false)")
	}
	row("")
	if t.Peers > 0 {
		row("peer link", fmt.Sprintf("on, %d peer(s)", t.Peers), "a release is pushed (the standby acquires at once), an acquisition is pushed (held requests move on),")
		row("", "", fmt.Sprintf("standbys read the lease every %s instead of every %s while the holder answers, step-down -to NODE", d(t.LeaseDuration), d(t.RetryInterval)))
	} else {
		row("peer link", "off", fmt.Sprintf("set [peer] for pushes, step-down -to NODE and standbys that read the lease every %s, not every %s", d(t.LeaseDuration), d(t.RetryInterval)))
	}
	tw.Flush()
	if len(t.Warnings) > 0 {
		b.WriteString("\nwarnings\n")
		for _, w := range t.Warnings {
			b.WriteString("  - " + w + "\n")
		}
	}
	return b.String()
}

func orNone(v time.Duration) string {
	if v == 0 {
		return "the local file lock"
	}
	return Duration(v).String()
}
