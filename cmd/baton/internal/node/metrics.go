package node

import (
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/batonproxy/baton/healthcheck"
	"github.com/batonproxy/baton/lease"
	"github.com/batonproxy/baton/peer"
	"github.com/batonproxy/baton/proxy"
)

// metrics are the node's Prometheus metrics, on a registry of its own (no
// package globals). Event counters and histograms are fed as things
// happen; everything that is a state is read at scrape time, so the request
// path pays only for the duration histogram. No label has unbounded values.
type metrics struct {
	reg *prometheus.Registry

	acquisitions  prometheus.Counter
	losses        *prometheus.CounterVec
	renewDuration prometheus.Histogram
	renewFailures prometheus.Counter
	reqDuration   [3]prometheus.Observer // by proxy.Path
	drains        prometheus.Counter
	cutRequests   prometheus.Counter
	cutUpgraded   prometheus.Counter
	checkDuration *prometheus.HistogramVec
	checkFailures *prometheus.CounterVec
	peerUp        *prometheus.GaugeVec
	peerRTT       *prometheus.GaugeVec
	failsafes     prometheus.Counter
	failsafeTime  prometheus.Counter
	promisesGiven prometheus.Counter
	clockJumps    prometheus.Counter

	schedActions *prometheus.CounterVec // Azure scheduled events (schedevents.go)
}

const ns = "baton"

func newMetrics(n *Node) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.acquisitions = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "lease_acquisitions_total",
		Help: "Times this node acquired the lease."})
	m.losses = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "lease_losses_total",
		Help: "Times this node stopped being active, by reason."}, []string{"reason"})
	m.renewDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "lease_renew_duration_seconds",
		Help: "Duration of lease renew calls.", Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}})
	m.renewFailures = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "lease_renew_failures_total",
		Help: "Failed lease renew calls."})
	rd := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "request_duration_seconds",
		Help: "Duration of proxied requests, by path taken.", Buckets: prometheus.DefBuckets}, []string{"path"})
	for p := proxy.PathLocal; p <= proxy.PathRejected; p++ {
		m.reqDuration[p] = rd.WithLabelValues(p.String())
	}
	m.drains = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "drains_total",
		Help: "Drains run after a demotion."})
	m.cutRequests = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "drain_cut_requests_total",
		Help: "Requests cut off at a drain deadline."})
	m.cutUpgraded = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "drain_cut_upgraded_connections_total",
		Help: "Upgraded (WebSocket) connections closed at a drain deadline."})
	m.checkDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "health_check_duration_seconds",
		Help: "Duration of health check runs.", Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}, []string{"check"})
	m.checkFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "health_check_failures_total",
		Help: "Failed health check runs, by check and kind of failure."}, []string{"check", "reason"})
	m.peerUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "peer_up",
		Help: "1 if the peer answered its last hello on the peer link, else 0."}, []string{"peer"})
	m.peerRTT = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "peer_rtt_seconds",
		Help: "Round-trip time of the last successful hello to the peer."}, []string{"peer"})
	m.failsafes = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "failsafe_entries_total",
		Help: "Times this node kept serving on its peers' promises because the storage did not answer."})
	m.failsafeTime = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "failsafe_seconds_total",
		Help: "Time spent in failsafe, counted when it ends."})
	m.promisesGiven = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "failsafe_promises_given_total",
		Help: "Promises this node gave to stand by for an active node in failsafe."})
	m.clockJumps = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "clock_jumps_total",
		Help: "Times the wall clock and the monotonic clock disagreed (a VM pause?): the active stopped serving until a renew."})
	for _, c := range []prometheus.Collector{m.clockJumps, m.acquisitions, m.losses, m.renewDuration, m.renewFailures, rd,
		m.drains, m.cutRequests, m.cutUpgraded, m.checkDuration, m.checkFailures, m.peerUp, m.peerRTT,
		m.failsafes, m.failsafeTime, m.promisesGiven} {
		f(c)
	}
	m.schedActions = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "scheduled_event_actions_total",
		Help: "What this node did about Azure scheduled events for its VM, by action."}, []string{"action"})
	f(m.schedActions)
	f(schedCollector{n})
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f(stateCollector{n})
	f(drillCollector{n}) // drill.go
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// onLeaseEvent feeds the lease counters; it runs on the election loop.
func (m *metrics) onLeaseEvent(ev lease.Event) {
	switch ev.Kind {
	case lease.EventAcquired:
		m.acquisitions.Inc()
	case lease.EventRenewed:
		m.renewDuration.Observe(ev.Latency.Seconds())
	case lease.EventRenewFailed:
		m.renewDuration.Observe(ev.Latency.Seconds())
		m.renewFailures.Inc()
	case lease.EventDemoted:
		m.losses.WithLabelValues(reasonClass(ev.Reason)).Inc()
	case lease.EventClockJump:
		m.clockJumps.Inc()
	case lease.EventFailsafe:
		if ev.Err != nil {
			m.failsafes.Inc()
		} else {
			m.failsafeTime.Add(ev.Latency.Seconds())
		}
	}
}

// onPeer records the last hello to a peer (the label is its configured
// address: bounded by the configuration).
func (m *metrics) onPeer(p peer.PeerStatus) {
	up := 0.0
	if p.Reachable {
		up = 1
		m.peerRTT.WithLabelValues(p.Address).Set(p.RTT.Seconds())
	}
	m.peerUp.WithLabelValues(p.Address).Set(up)
}

// onCheckResult feeds the health check histograms; it runs on the
// checker's goroutine.
func (m *metrics) onCheckResult(check string, r healthcheck.Result) {
	m.checkDuration.WithLabelValues(check).Observe(r.Duration.Seconds())
	if !r.OK {
		m.checkFailures.WithLabelValues(check, failureClass(r.Reason)).Inc()
	}
}

// failureClass maps a check failure to a bounded label value.
func failureClass(reason string) string {
	switch r := strings.ToLower(reason); {
	case strings.Contains(r, "timeout") || strings.Contains(r, "deadline"):
		return "timeout"
	case strings.Contains(r, "refused"):
		return "refused"
	case strings.HasPrefix(r, "status"):
		return "status"
	case strings.Contains(r, "body"):
		return "body"
	case strings.Contains(r, "exit"):
		return "exit"
	}
	return "other"
}

func (m *metrics) onDuration(p proxy.Path, d time.Duration) { m.reqDuration[p].Observe(d.Seconds()) }

// reasonClass maps a demotion reason to a bounded label value.
func reasonClass(reason string) string {
	head, _, _ := strings.Cut(reason, ":")
	switch head {
	case "renew deadline passed", "lease lost", "backend unhealthy", "step-down", "maintenance", "stopping", "stopped":
		return strings.ReplaceAll(head, " ", "_")
	}
	return "other"
}

var (
	descRole      = prometheus.NewDesc(ns+"_role", "1 for the node's current role, 0 for the others.", []string{"role"}, nil)
	descTerm      = prometheus.NewDesc(ns+"_lease_term", "The fencing term this node last held or saw.", nil, nil)
	descSince     = prometheus.NewDesc(ns+"_lease_seconds_since_renew", "Seconds since the last successful acquire or renew (0 when never).", nil, nil)
	descLeft      = prometheus.NewDesc(ns+"_lease_remaining_seconds", "Own-clock lease validity left while active, else 0.", nil, nil)
	descCandidate = prometheus.NewDesc(ns+"_candidate", "1 when the node may compete for the lease (healthy, no maintenance, no back-off).", nil, nil)
	descServing   = prometheus.NewDesc(ns+"_probe_up", "1 when the probe answers 200.", nil, nil)
	descHealthy   = prometheus.NewDesc(ns+"_backend_healthy", "1 when every required health check passes and no passive signal tripped.", nil, nil)
	descCheck     = prometheus.NewDesc(ns+"_health_check_up", "1 when the health check is passing.", []string{"check"}, nil)
	descRequests  = prometheus.NewDesc(ns+"_requests_total", "Requests answered, by path taken and status class.", []string{"path", "code"}, nil)
	descInFlight  = prometheus.NewDesc(ns+"_requests_in_flight", "Requests being served by the local backend.", nil, nil)
	descUpgraded  = prometheus.NewDesc(ns+"_upgraded_connections", "Open upgraded (WebSocket) connections.", nil, nil)
	descInfo      = prometheus.NewDesc(ns+"_build_info", "Always 1; the labels describe the build.", []string{"version"}, nil)
	descTLSExpiry = prometheus.NewDesc(ns+"_tls_certificate_expiry_timestamp_seconds", "Unix time at which the earliest certificate in force expires.", nil, nil)
	descReloads   = prometheus.NewDesc(ns+"_config_reloads_total", "Configuration reloads, by result.", []string{"result"}, nil)
	descFailsafe  = prometheus.NewDesc(ns+"_failsafe_active", "1 while the node serves on its peers' promises because the storage does not answer.", nil, nil)
	descPromised  = prometheus.NewDesc(ns+"_failsafe_promised", "1 while this node has promised an active node in failsafe to stand by.", nil, nil)
	descConns     = prometheus.NewDesc(ns+"_client_connections", "Open client connections, by main listener.", []string{"listener"}, nil)
	descConnsMax  = prometheus.NewDesc(ns+"_client_connections_max", "The client connection cap in force, per main listener ([limits] max_conns).", nil, nil)
	descIdleShed  = prometheus.NewDesc(ns+"_client_idle_closed_total", "Idle keep-alive connections closed to make room at the connection cap.", nil, nil)
	descSlots     = prometheus.NewDesc(ns+"_backend_slots_in_use", "Requests at the backend (or the active node) now.", nil, nil)
	descSlotsWait = prometheus.NewDesc(ns+"_backend_slots_waiting", "Requests waiting for a backend slot.", nil, nil)
	descSlotsMax  = prometheus.NewDesc(ns+"_backend_slots_max", "The backend concurrency cap in force ([limits] max_backend_conns).", nil, nil)
	descBusy      = prometheus.NewDesc(ns+"_requests_busy_total", "Requests answered 503 because no backend slot came in time.", nil, nil)
)

// stateCollector reports what is a state at scrape time.
type stateCollector struct{ n *Node }

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRole, descTerm, descSince, descLeft, descCandidate, descServing,
		descHealthy, descCheck, descRequests, descInFlight, descUpgraded, descInfo, descReloads, descTLSExpiry,
		descFailsafe, descPromised, descConns, descConnsMax, descIdleShed, descSlots, descSlotsWait, descSlotsMax, descBusy} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	st := n.elector.State()
	role := n.roles.role()
	for r := lease.RoleStandby; r <= lease.RoleFailsafe; r++ {
		ch <- prometheus.MustNewConstMetric(descRole, prometheus.GaugeValue, b2f(r == role), r.String())
	}
	ch <- prometheus.MustNewConstMetric(descTerm, prometheus.GaugeValue, float64(st.Term))
	since := 0.0
	if !st.LastRenew.IsZero() {
		since = time.Since(st.LastRenew).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(descSince, prometheus.GaugeValue, since)
	left := 0.0
	if _, ok := n.elector.Fence(); ok {
		left = max(time.Until(st.ValidUntil).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(descLeft, prometheus.GaugeValue, left)
	ch <- prometheus.MustNewConstMetric(descFailsafe, prometheus.GaugeValue, b2f(st.Failsafe))
	ch <- prometheus.MustNewConstMetric(descPromised, prometheus.GaugeValue, b2f(st.PromisedTo != "" && time.Now().Before(st.PromisedUntil)))
	candidate := st.Healthy && !st.Maintenance && !time.Now().Before(st.BackoffUntil) && !n.roles.isStopping()
	ch <- prometheus.MustNewConstMetric(descCandidate, prometheus.GaugeValue, b2f(candidate))
	up, _ := n.probeState()
	ch <- prometheus.MustNewConstMetric(descServing, prometheus.GaugeValue, b2f(up))
	hs := n.monitor().Status()
	ch <- prometheus.MustNewConstMetric(descHealthy, prometheus.GaugeValue, b2f(hs.Healthy))
	for _, cs := range hs.Checks {
		ch <- prometheus.MustNewConstMetric(descCheck, prometheus.GaugeValue, b2f(cs.Healthy), cs.Name)
	}
	counts := n.proxy.StatusCounts()
	for p := proxy.PathLocal; p <= proxy.PathRejected; p++ {
		for class, v := range counts[p] {
			if v > 0 {
				ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(v), p.String(), proxy.CodeClasses[class])
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(n.proxy.InFlight()))
	ch <- prometheus.MustNewConstMetric(descUpgraded, prometheus.GaugeValue, float64(n.proxy.Upgraded()))
	ch <- prometheus.MustNewConstMetric(descInfo, prometheus.GaugeValue, 1, n.version)
	ls := n.limitsStatus()
	for key, open := range ls.ClientConns {
		ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(open), key)
	}
	ch <- prometheus.MustNewConstMetric(descConnsMax, prometheus.GaugeValue, float64(ls.MaxConns))
	ch <- prometheus.MustNewConstMetric(descIdleShed, prometheus.CounterValue, float64(ls.IdleClosed))
	ch <- prometheus.MustNewConstMetric(descSlots, prometheus.GaugeValue, float64(ls.BackendInUse))
	ch <- prometheus.MustNewConstMetric(descSlotsWait, prometheus.GaugeValue, float64(ls.BackendWaiting))
	ch <- prometheus.MustNewConstMetric(descSlotsMax, prometheus.GaugeValue, float64(ls.MaxBackendConns))
	ch <- prometheus.MustNewConstMetric(descBusy, prometheus.CounterValue, float64(n.proxy.Counters().Busy))
	if n.tls != nil {
		if exp := n.tls.expires(); !exp.IsZero() {
			ch <- prometheus.MustNewConstMetric(descTLSExpiry, prometheus.GaugeValue, float64(exp.Unix()))
		}
	}
	ok, failed := n.reloads()
	ch <- prometheus.MustNewConstMetric(descReloads, prometheus.CounterValue, float64(ok), "applied")
	ch <- prometheus.MustNewConstMetric(descReloads, prometheus.CounterValue, float64(failed), "rejected")
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
