package e2e

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Request is one request of the load client, as the client saw it.
type Request struct {
	Worker   int
	Start    time.Time
	End      time.Time
	Code     int    // HTTP status; 0 when no answer arrived
	Err      string // transport error; "" when an answer arrived
	Instance string // X-Instance of the answer: the backend that served it
	Term     uint64 // the term the backend was sent (Baton-Term); 0 if none
	NewConn  bool   // sent on a newly dialed connection (through the load balancer)
	Close    bool   // the answer said Connection: close
}

// OK reports whether a backend answered the request with 200.
func (r Request) OK() bool { return r.Err == "" && r.Code == http.StatusOK && r.Instance != "" }

func (r Request) String() string {
	s := fmt.Sprintf("worker %d %s..%s", r.Worker, r.Start.Format("15:04:05.000"), r.End.Format("15:04:05.000"))
	if r.NewConn {
		s += " new connection"
	}
	if r.Err != "" {
		return s + " error " + r.Err
	}
	return fmt.Sprintf("%s %d %s term %d", s, r.Code, r.Instance, r.Term)
}

// Window tells Analyze when things happened.
type Window struct {
	// Event is when the harness injected the fault.
	Event time.Time
	// Switch is when the old active stopped starting requests locally
	// (zero: Event). Requests that started before it were in flight when
	// the switch began and are left out of the dual-serving count.
	Switch time.Time
	// Repair is when the harness undid the fault (zero: never).
	Repair time.Time
	// OldTerm is the term of the active before the event.
	OldTerm uint64
}

// Summary is what one scenario measured.
type Summary struct {
	Requests     int
	Failed       int
	FirstFailure string

	// Recovered reports whether a request was answered under a term newer
	// than OldTerm; Recovery is from Event to the end of the first such
	// request, AfterRepair from Repair to it (0 without a repair).
	Recovered   bool
	Recovery    time.Duration
	AfterRepair time.Duration
	NewInstance string // the backend of that first answer
	NewTerm     uint64 // its term
	MaxTerm     uint64 // the highest term any answer carried
	Terms       int    // how many distinct terms answers carried after the event

	// Outage is the longest time between the ends of two consecutive
	// successful requests (the client's view of the service gap).
	Outage time.Duration

	// LBNoServer is how long the load balancer had no server up after the
	// event; the harness sets it from HAProxy's log (Analyze does not).
	LBNoServer time.Duration

	// Dual counts pairs of requests answered by different backends whose
	// intervals overlap, both started at or after Switch.
	Dual      int
	FirstDual string
	// Stale counts requests answered under OldTerm that started at or
	// after Switch.
	Stale      int
	FirstStale string
}

// Analyze summarizes the load client's requests around one event.
func Analyze(rs []Request, w Window) Summary {
	sw := w.Switch
	if sw.IsZero() {
		sw = w.Event
	}
	s := Summary{Requests: len(rs)}
	sorted := append([]Request(nil), rs...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Start.Before(sorted[j].Start) })

	var okEnds []time.Time
	terms := map[uint64]bool{}
	var first Request
	for _, r := range sorted {
		if !r.OK() {
			if s.Failed == 0 {
				s.FirstFailure = r.String()
			}
			s.Failed++
			continue
		}
		okEnds = append(okEnds, r.End)
		s.MaxTerm = max(s.MaxTerm, r.Term)
		if !r.Start.Before(w.Event) {
			terms[r.Term] = true
		}
		if r.Term > w.OldTerm && (!s.Recovered || r.End.Before(first.End)) {
			s.Recovered, first = true, r
		}
		if r.Term == w.OldTerm && !r.Start.Before(sw) {
			if s.Stale == 0 {
				s.FirstStale = r.String()
			}
			s.Stale++
		}
	}
	s.Terms = len(terms)
	if s.Recovered {
		s.Recovery = first.End.Sub(w.Event)
		s.NewInstance, s.NewTerm = first.Instance, first.Term
		if !w.Repair.IsZero() {
			s.AfterRepair = first.End.Sub(w.Repair)
		}
	}
	sort.Slice(okEnds, func(i, j int) bool { return okEnds[i].Before(okEnds[j]) })
	for i := 1; i < len(okEnds); i++ {
		s.Outage = max(s.Outage, okEnds[i].Sub(okEnds[i-1]))
	}
	s.Dual, s.FirstDual = dualServing(sorted, sw)
	return s
}

// dualServing counts overlapping pairs of answered requests from different
// backends among those started at or after from, with a sweep over the
// interval ends. Touching intervals (one ends when the other starts) do
// not overlap.
func dualServing(rs []Request, from time.Time) (int, string) {
	type edge struct {
		at    time.Time
		start bool
		i     int
	}
	var edges []edge
	for i, r := range rs {
		if r.Instance == "" || r.Start.Before(from) {
			continue
		}
		edges = append(edges, edge{r.Start, true, i}, edge{r.End, false, i})
	}
	sort.Slice(edges, func(i, j int) bool {
		if !edges[i].at.Equal(edges[j].at) {
			return edges[i].at.Before(edges[j].at)
		}
		return !edges[i].start && edges[j].start // ends first
	})
	open := map[string]map[int]bool{}
	pairs, example := 0, ""
	for _, e := range edges {
		inst := rs[e.i].Instance
		if !e.start {
			delete(open[inst], e.i)
			continue
		}
		for other, set := range open {
			if other == inst || len(set) == 0 {
				continue
			}
			if example == "" {
				for j := range set {
					example = rs[j].String() + " overlaps " + rs[e.i].String()
					break
				}
			}
			pairs += len(set)
		}
		if open[inst] == nil {
			open[inst] = map[int]bool{}
		}
		open[inst][e.i] = true
	}
	return pairs, example
}

// TableHeader is the header of the table `make e2e` prints; Row gives one
// line of it.
const TableHeader = "| scenario | requests | failed | recovery | after repair | longest gap | LB without server | dual serving | stale answers | term (new backend) |\n" +
	"|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"

// Row is the scenario's line of the report table.
func (s Summary) Row(scenario string, oldTerm uint64) string {
	rec, rep := "none", "-"
	if s.Recovered {
		rec = seconds(s.Recovery)
		if s.AfterRepair != 0 {
			rep = seconds(s.AfterRepair)
		}
	}
	term := fmt.Sprintf("%d → %d (%s)", oldTerm, s.NewTerm, s.NewInstance)
	if !s.Recovered {
		term = fmt.Sprintf("%d → -", oldTerm)
	}
	cells := []string{scenario, fmt.Sprint(s.Requests), fmt.Sprint(s.Failed), rec, rep,
		seconds(s.Outage), seconds(s.LBNoServer), fmt.Sprint(s.Dual), fmt.Sprint(s.Stale), term}
	return "| " + strings.Join(cells, " | ") + " |"
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
