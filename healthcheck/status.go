package healthcheck

import (
	"encoding/json"
	"slices"
	"time"
)

// Status is a snapshot of the Monitor for /status. It marshals to JSON as is.
type Status struct {
	Healthy        bool          `json:"healthy"`
	Reason         string        `json:"reason,omitempty"`
	FirstRoundDone bool          `json:"first_round_done"`
	Flaps          int64         `json:"flaps"` // changes of Healthy() since New; the first rise counts
	Checks         []CheckStatus `json:"checks"`
	Passive        PassiveStatus `json:"passive"`
}

// CheckStatus is one check's state.
type CheckStatus struct {
	Name              string   `json:"name"`
	Type              string   `json:"type,omitempty"` // "http", "tcp", "exec"; empty for other Checkers
	Required          bool     `json:"required"`
	Healthy           bool     `json:"healthy"`
	ConsecutivePasses int      `json:"consecutive_passes"`
	ConsecutiveFails  int      `json:"consecutive_fails"`
	Flaps             int      `json:"flaps"`   // healthy<->unhealthy transitions of this check
	Results           []Result `json:"results"` // oldest first
}

// Result is one run of a check.
type Result struct {
	At       time.Time     `json:"at"`
	OK       bool          `json:"ok"`
	Reason   string        `json:"reason,omitempty"`
	Duration time.Duration `json:"-"` // marshalled as a string, e.g. "1.5ms"
	Output   string        `json:"output,omitempty"`
}

// MarshalJSON writes Duration as a string ("1.5ms") rather than nanoseconds.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	return json.Marshal(struct {
		plain
		Duration string `json:"duration"`
	}{plain(r), r.Duration.String()})
}

// PassiveStatus is the passive signals as of the last passive tick (InFlight is live).
type PassiveStatus struct {
	ErrorRate    float64      `json:"error_rate"` // errors/requests in the window
	Requests     int64        `json:"requests"`   // completed in the window
	Errors       int64        `json:"errors"`
	InFlight     int64        `json:"in_flight"`
	TrippedUntil *time.Time   `json:"tripped_until,omitempty"`
	Reason       string       `json:"reason,omitempty"`
	Paths        []PathStatus `json:"paths,omitempty"` // one per PathSpec, in order
}

// PathStatus is one path rule's window as of the last passive tick. A tripped rule is named
// in PassiveStatus.Reason.
type PathStatus struct {
	Prefix    string  `json:"prefix"`
	ErrorRate float64 `json:"error_rate"`
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
}

// Status returns a snapshot; results are copies.
func (m *Monitor) Status() Status {
	ok, reason := m.Healthy()
	s := Status{
		Healthy:        ok,
		Reason:         reason,
		FirstRoundDone: m.firstDone.Load(),
		Flaps:          m.flaps.Load(),
		Checks:         make([]CheckStatus, 0, len(m.checks)),
	}
	for _, c := range m.checks {
		c.mu.Lock()
		s.Checks = append(s.Checks, CheckStatus{
			Name:              c.spec.Name,
			Type:              c.typ,
			Required:          c.spec.Required,
			Healthy:           c.healthy.Load(),
			ConsecutivePasses: c.passes,
			ConsecutiveFails:  c.fails,
			Flaps:             c.flaps,
			Results:           slices.Clone(c.history),
		})
		c.mu.Unlock()
	}
	m.passive.mu.Lock()
	s.Passive = m.passive.snap
	m.passive.mu.Unlock() // snap.Paths is a new slice on every tick, never written after
	s.Passive.InFlight = m.inflight.v.Load()
	return s
}
