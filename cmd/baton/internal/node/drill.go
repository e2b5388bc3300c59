package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// DrillResult is what one `baton drill` measured through the load
// balancer: the drill POSTs it to the admin API of the node it stepped
// down (POST /drill/result, with the admin token), which keeps the last
// one in memory for /status ("last_drill") and the baton_drill_* metrics.
// Durations are in milliseconds, as elsewhere in /status.
type DrillResult struct {
	URL      string    `json:"url"`          // what the drill sent its requests to (userinfo removed)
	Node     string    `json:"node"`         // the node stepped down
	To       string    `json:"to,omitempty"` // the node it was handed to (-to), if named
	Started  time.Time `json:"started"`
	StepDown time.Time `json:"step_down_at"` // when the step-down was sent
	Finished time.Time `json:"finished"`
	Rate     int       `json:"rate"` // requests per second asked for

	Requests  int `json:"requests"` // sent and finished (answered, failed or timed out)
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`   // Timeouts + Errors + the non-2xx answers (FailedStatuses)
	Timeouts  int `json:"timeouts"` // of Failed: no answer within the drill's -timeout
	Errors    int `json:"errors"`   // of Failed: no answer (refused, reset, ...)
	// FailedBefore counts the failed requests that ended before the
	// step-down was sent: the service was not whole to begin with.
	FailedBefore int `json:"failed_before_step_down,omitempty"`
	// FailedNewConns counts the failed requests that were sent on a new
	// connection: a load balancer with no server up refuses those, while
	// established connections carry on.
	FailedNewConns int `json:"failed_on_new_connections,omitempty"`
	// FailedStatuses counts the non-2xx answers by status code.
	FailedStatuses map[string]int `json:"failed_statuses,omitempty"`
	FirstFailure   string         `json:"first_failure,omitempty"`
	// Skipped counts requests not sent because too many were in flight.
	Skipped int `json:"skipped,omitempty"`

	// LongestGapMS is the longest stretch without a successful answer: the
	// longest time between the ends of two consecutive successful
	// requests (and from the first request sent, or to the last one
	// finished). GapStartMS is where it began, from the step-down
	// (negative: before it).
	LongestGapMS float64 `json:"longest_gap_ms"`
	GapStartMS   float64 `json:"longest_gap_start_ms"`

	StepDownMS     float64 `json:"step_down_ms"`     // the admin API's answer time
	StepDownAnswer string  `json:"step_down_answer"` // its answer, or the error

	// IdentifiedBy is the response header that named the serving node
	// (backend.identify_header, else the demo app's X-Instance); "" when
	// the answers named none.
	IdentifiedBy string `json:"identified_by,omitempty"`
	OldActive    string `json:"old_active,omitempty"` // as the answers named it before the step-down
	NewActive    string `json:"new_active,omitempty"` // the first other name after it
	// NewActiveMS is the time from sending the step-down to the end of the
	// first successful answer from the new active; absent when none came.
	NewActiveMS *float64 `json:"new_active_after_ms,omitempty"`

	OK       bool     `json:"ok"`                 // no request failed and the switchover was seen (or could not be)
	Problems []string `json:"problems,omitempty"` // what made it not OK, and warnings

	RecordedAt time.Time `json:"recorded_at,omitzero"` // set by the node that keeps it
}

// Bounds of a posted drill result.
const (
	maxDrillBody     = 64 << 10
	maxDrillString   = 1024
	maxDrillProblems = 32
	maxDrillStatuses = 64
)

// check validates a posted result and trims its strings.
func (d *DrillResult) check() error {
	if d.Requests < 0 || d.Succeeded < 0 || d.Failed < 0 || d.Timeouts < 0 || d.Errors < 0 || d.Skipped < 0 || d.Rate < 0 || d.FailedBefore < 0 || d.FailedNewConns < 0 {
		return errors.New("negative count")
	}
	if d.Succeeded+d.Failed != d.Requests || d.Timeouts+d.Errors > d.Failed || d.FailedBefore > d.Failed || d.FailedNewConns > d.Failed {
		return fmt.Errorf("counts do not add up: %d requests, %d succeeded, %d failed (%d timeouts, %d errors)",
			d.Requests, d.Succeeded, d.Failed, d.Timeouts, d.Errors)
	}
	if d.LongestGapMS < 0 || d.StepDownMS < 0 || d.NewActiveMS != nil && *d.NewActiveMS < 0 {
		return errors.New("negative duration")
	}
	if len(d.FailedStatuses) > maxDrillStatuses || len(d.Problems) > maxDrillProblems {
		return errors.New("too many statuses or problems")
	}
	for k, v := range d.FailedStatuses {
		if c, err := strconv.Atoi(k); err != nil || c < 100 || c > 999 || v < 0 {
			return fmt.Errorf("failed_statuses: %q: %d", k, v)
		}
	}
	for _, s := range []*string{&d.URL, &d.Node, &d.To, &d.FirstFailure, &d.StepDownAnswer, &d.IdentifiedBy, &d.OldActive, &d.NewActive} {
		*s = clip(*s)
	}
	for i := range d.Problems {
		d.Problems[i] = clip(d.Problems[i])
	}
	return nil
}

func clip(s string) string {
	if len(s) > maxDrillString {
		return s[:maxDrillString] + "..."
	}
	return s
}

// drillResultHandler is POST /drill/result (behind the admin token).
func (n *Node) drillResultHandler(w http.ResponseWriter, r *http.Request) {
	var d DrillResult
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDrillBody))
	if err == nil {
		err = json.Unmarshal(body, &d)
	}
	if err == nil {
		err = d.check()
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "drill result: " + err.Error()})
		return
	}
	d.RecordedAt = time.Now()
	n.lastDrill.Store(&d)
	fields := []zap.Field{zap.String("url", d.URL), zap.Bool("ok", d.OK), zap.Int("requests", d.Requests),
		zap.Int("failed", d.Failed), zap.Float64("longest_gap_ms", d.LongestGapMS), zap.String("new_active", d.NewActive)}
	if d.NewActiveMS != nil {
		fields = append(fields, zap.Float64("new_active_after_ms", *d.NewActiveMS))
	}
	n.log.Info("failover drill recorded", fields...)
	writeJSON(w, http.StatusOK, map[string]string{"result": "recorded"})
}

var (
	descDrillTime   = prometheus.NewDesc(ns+"_drill_timestamp_seconds", "Unix time at which this node recorded the last `baton drill` result.", nil, nil)
	descDrillReqs   = prometheus.NewDesc(ns+"_drill_requests", "Requests the last drill sent through the load balancer.", nil, nil)
	descDrillFailed = prometheus.NewDesc(ns+"_drill_failed_requests", "Requests of the last drill that failed (non-2xx, error, timeout).", nil, nil)
	descDrillGap    = prometheus.NewDesc(ns+"_drill_longest_gap_seconds", "The longest stretch without a successful answer in the last drill.", nil, nil)
	descDrillNew    = prometheus.NewDesc(ns+"_drill_new_active_seconds", "From the last drill's step-down to the first answer of the new active (absent when not identified).", nil, nil)
	descDrillOK     = prometheus.NewDesc(ns+"_drill_success", "1 when the last drill lost no request and saw the switchover, else 0.", nil, nil)
)

// drillCollector reports the last drill result, once there is one.
type drillCollector struct{ n *Node }

func (c drillCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDrillTime, descDrillReqs, descDrillFailed, descDrillGap, descDrillNew, descDrillOK} {
		ch <- d
	}
}

func (c drillCollector) Collect(ch chan<- prometheus.Metric) {
	d := c.n.lastDrill.Load()
	if d == nil {
		return
	}
	g := func(desc *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v)
	}
	g(descDrillTime, float64(d.RecordedAt.UnixNano())/1e9)
	g(descDrillReqs, float64(d.Requests))
	g(descDrillFailed, float64(d.Failed))
	g(descDrillGap, d.LongestGapMS/1000)
	if d.NewActiveMS != nil {
		g(descDrillNew, *d.NewActiveMS/1000)
	}
	g(descDrillOK, b2f(d.OK))
}
