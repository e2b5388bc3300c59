package node

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/batonproxy/baton/healthcheck"
	"github.com/batonproxy/baton/lease"
	"github.com/batonproxy/baton/peer"
)

// Status is the JSON document of the admin API's /status, also decoded by
// `baton status`.
type Status struct {
	Node        string    `json:"node"`
	Version     string    `json:"version"`
	Role        string    `json:"role"`
	Reason      string    `json:"reason"`
	Since       time.Time `json:"since"`
	Serving     bool      `json:"serving"` // what the probe answers: true = 200
	Term        uint64    `json:"term"`
	Holder      *Holder   `json:"holder,omitempty"`
	LeaseLeftMS int64     `json:"lease_time_left_ms"` // own-clock validity left while active, else 0
	LastRenew   time.Time `json:"last_renew,omitzero"`
	RenewMS     float64   `json:"last_renew_latency_ms"`
	Backoff     time.Time `json:"candidacy_backoff_until,omitzero"`
	Maintenance bool      `json:"maintenance"`
	LeaseError  string    `json:"lease_error,omitempty"`
	// Failsafe: serving on the peers' promises since FailsafeSince;
	// PromisedTo: this node promised that active node to stand by.
	Failsafe      bool      `json:"failsafe"`
	FailsafeSince time.Time `json:"failsafe_since,omitzero"`
	PromisedTo    string    `json:"promised_to,omitempty"`
	LeaseKind     string    `json:"lease_backend"`

	Health   healthcheck.Status `json:"health"`
	Requests Requests           `json:"requests"`
	Drain    DrainStatus        `json:"drain"`
	Started  time.Time          `json:"started"`
	Config   string             `json:"config_file,omitempty"`
	LoadedAt time.Time          `json:"config_loaded_at"`
	Peers    []peer.PeerStatus  `json:"peers,omitempty"` // the peer link, when configured
	// Transitions are the last changes of the role, newest last.
	Transitions []Transition `json:"transitions"`

	// Azure scheduled events pending for this VM ([azure]), and why the
	// metadata service gave no answer at the last poll.
	ScheduledEvents      []ScheduledEvent `json:"scheduled_events,omitempty"`
	ScheduledEventsError string           `json:"scheduled_events_error,omitempty"`
	LastDrill            *DrillResult     `json:"last_drill,omitempty"` // the last `baton drill` against this node (drill.go)
}

// Holder is the lease holder record as the node last saw it.
type Holder struct {
	Node         string    `json:"node"`
	AdvertiseURL string    `json:"advertise_url,omitempty"`
	Term         uint64    `json:"term"`
	AcquiredAt   time.Time `json:"acquired_at,omitzero"`
}

// Requests counts the data plane's work since start.
type Requests struct {
	InFlight  int64  `json:"in_flight"`
	Upgraded  int    `json:"upgraded_connections"`
	Local     uint64 `json:"local"`
	Forwarded uint64 `json:"forwarded"`
	Rejected  uint64 `json:"rejected"`
	// Busy were answered 503 because no backend slot came in time
	// ([limits] max_backend_conns); counted in Local or Forwarded too.
	Busy   uint64       `json:"busy"`
	Limits LimitsStatus `json:"limits"`
}

// LimitsStatus is where the node stands against [limits].
type LimitsStatus struct {
	MaxConns        int            `json:"max_conns"`          // per main listener, as in force
	ClientConns     map[string]int `json:"client_connections"` // open, by listener key
	IdleClosed      uint64         `json:"idle_closed"`        // idle keep-alive connections closed to make room
	MaxBackendConns int            `json:"max_backend_conns"`  // as in force
	BackendInUse    int            `json:"backend_in_use"`
	BackendWaiting  int            `json:"backend_waiting"`
}

// Status returns the node's current status.
func (n *Node) Status() Status {
	st := n.elector.State()
	role := n.roles.view()
	up, _ := n.probeState()
	s := Status{
		Node:        n.cfg.NodeName,
		Version:     n.version,
		Role:        role.Now.To,
		Reason:      role.Now.Reason,
		Since:       role.Now.At,
		Serving:     up,
		Term:        st.Term,
		LastRenew:   st.LastRenew,
		RenewMS:     float64(st.RenewLatency.Microseconds()) / 1000,
		Backoff:     st.BackoffUntil,
		Maintenance: st.Maintenance,
		LeaseError:  st.LastError,
		Failsafe:    st.Failsafe,
		LeaseKind:   n.cfg.Lease.Backend,
		Health:      n.monitor().Status(),
		Started:     n.started,
		Config:      n.cfg.Path,
		LoadedAt:    *n.loadedAt.Load(),
	}
	if st.Failsafe {
		s.FailsafeSince = st.FailsafeSince
	}
	if st.PromisedTo != "" && time.Now().Before(st.PromisedUntil) {
		s.PromisedTo = st.PromisedTo
	}
	if st.HolderKnown {
		s.Holder = &Holder{Node: st.Holder.Holder, AdvertiseURL: st.Holder.AdvertiseURL,
			Term: st.Holder.Term, AcquiredAt: st.Holder.AcquiredAt}
	}
	if _, ok := n.elector.Fence(); ok {
		s.LeaseLeftMS = time.Until(st.ValidUntil).Milliseconds()
	}
	s.Requests.InFlight = n.proxy.InFlight()
	c := n.proxy.Counters()
	s.Requests.Local, s.Requests.Forwarded, s.Requests.Rejected, s.Requests.Busy = c.Local, c.Forwarded, c.Rejected, c.Busy
	s.Requests.Limits = n.limitsStatus()
	s.Requests.Upgraded = n.proxy.Upgraded()
	s.Drain = n.drainStatus()
	s.Transitions = n.roles.transitions()
	if n.link != nil {
		s.Peers = n.link.Peers()
	}
	s.ScheduledEvents, s.ScheduledEventsError = n.schedStatus()
	s.LastDrill = n.lastDrill.Load()
	return s
}

func (n *Node) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, n.Status())
	})
	mux.Handle("GET /metrics", n.metrics.handler())
	mux.HandleFunc("POST /reload", n.authorized(func(w http.ResponseWriter, _ *http.Request) {
		res, err := n.Reload()
		if err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, res)
	}))
	mux.HandleFunc("POST /step-down", n.authorized(func(w http.ResponseWriter, r *http.Request) {
		if to := r.URL.Query().Get("to"); to != "" {
			rec, err := n.stepDownTo(r.Context(), to, "operator")
			if err != nil {
				code := http.StatusBadGateway
				switch {
				case errors.Is(err, lease.ErrNotActive):
					code = http.StatusConflict
				case errors.Is(err, errNoLink), errors.Is(err, peer.ErrUnknownPeer):
					code = http.StatusBadRequest
				}
				writeJSON(w, code, map[string]string{"error": err.Error()})
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"result": "handed over to " + rec.Holder, "node": rec.Holder, "term": rec.Term})
			return
		}
		if err := n.elector.StepDown("step-down requested by operator"); err != nil {
			code := http.StatusInternalServerError
			if errors.Is(err, lease.ErrNotActive) {
				code = http.StatusConflict
			}
			writeJSON(w, code, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"result": "stepped down"})
	}))
	mux.HandleFunc("POST /drill/result", n.authorized(n.drillResultHandler))
	mux.HandleFunc("POST /maintenance", n.authorized(func(w http.ResponseWriter, r *http.Request) {
		var on bool
		switch r.URL.Query().Get("on") {
		case "true", "1", "on":
			on = true
		case "false", "0", "off":
		default:
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "query parameter on must be true or false"})
			return
		}
		n.setMaintenance(on) // schedevents.go: the operator's, not the watcher's
		writeJSON(w, http.StatusOK, map[string]bool{"maintenance": on})
	}))
	// Go's profiler, registered here explicitly: nothing serves the
	// DefaultServeMux that importing net/http/pprof also registers on.
	// pprof.Index serves the named profiles too (/debug/pprof/heap,
	// allocs, goroutine, block, mutex, threadcreate).
	for _, p := range []struct {
		pattern string
		h       http.HandlerFunc
	}{
		{"GET /debug/pprof/", pprof.Index},
		{"GET /debug/pprof/cmdline", pprof.Cmdline},
		{"GET /debug/pprof/profile", pprof.Profile},
		{"GET /debug/pprof/symbol", pprof.Symbol},
		{"POST /debug/pprof/symbol", pprof.Symbol},
		{"GET /debug/pprof/trace", pprof.Trace},
	} {
		mux.HandleFunc(p.pattern, n.profiling(n.authorized(p.h)))
	}
	return mux
}

// profiling serves h only while admin.pprof is on (it follows reloads);
// otherwise the path does not exist (404), token or not.
func (n *Node) profiling(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !n.live.Load().Admin.Pprof {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	}
}

// authorized guards an admin action (any method) with the bearer token
// from admin.token_file, compared in constant time.
func (n *Node) authorized(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token := *n.token.Load()
		if token == "" {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "admin actions are disabled: set admin.token_file"})
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="baton"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing bearer token"})
			return
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			n.log.Warn("admin action refused: wrong token", zap.String("path", r.URL.Path), zap.String("client", r.RemoteAddr))
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "wrong token"})
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
