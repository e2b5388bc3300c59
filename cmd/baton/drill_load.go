package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batonproxy/baton/cmd/baton/internal/node"
	"github.com/batonproxy/baton/proxy"
)

// The drill's load and its measurement: steady GET requests to the load
// balancer's URL at a fixed rate (open loop: a slow answer does not delay
// the next request, as it would not delay the next user), each with its
// own deadline, and what they saw summarized the way the e2e matrix does
// (e2e/analyze.go): failed requests, the longest time without a successful
// answer, the first answer from the new active.

// instanceHeader is the demo app's answer header naming its instance, the
// drill's fallback when the identify header is off.
const instanceHeader = "X-Instance"

// Bounds of the load.
const (
	drillMaxInFlight = 1024    // requests in flight at once; past it a send is skipped
	drillMaxBody     = 1 << 20 // bytes of an answer read (the rest makes the connection go)
)

// drillSample is one request of the drill as the client saw it.
type drillSample struct {
	start, end time.Time
	code       int    // HTTP status; 0: no answer
	err        string // why there was no whole answer; "" when there was
	timeout    bool   // no whole answer within -timeout
	ident      string // the serving node as the answer named it; "" none
	by         string // the header that named it (identify header or X-Instance)
	newConn    bool   // sent on a connection dialed for it (through the load balancer)
}

// ok: a whole 2xx answer.
func (s drillSample) ok() bool { return s.err == "" && s.code >= 200 && s.code < 300 }

// describe is the sample for a message, timed from base (the step-down).
func (s drillSample) describe(base time.Time) string {
	at := "sent " + fmtOffset(s.start.Sub(base))
	switch {
	case s.timeout:
		return fmt.Sprintf("request %s: no answer within %s (%s)", at, fmtDur(s.end.Sub(s.start)), s.err)
	case s.err != "":
		return fmt.Sprintf("request %s: %s", at, s.err)
	}
	d := fmt.Sprintf("request %s: %d %s", at, s.code, http.StatusText(s.code))
	if s.ident != "" {
		d += " from " + s.ident
	}
	return d
}

// drillLoad sends the drill's requests and keeps their samples.
type drillLoad struct {
	url     string
	header  string // the identify header's name
	agent   string
	timeout time.Duration
	tr      *http.Transport
	client  *http.Client

	stop     chan struct{}
	done     chan struct{} // closed when the sender stopped
	wg       sync.WaitGroup
	inFlight atomic.Int64

	mu      sync.Mutex
	samples []drillSample
	skipped int
	ok      int
	failed  int
	last    string // the serving node of the last successful answer
}

// startDrillLoad starts sending GET url, rate times a second, until
// finish. Every request has timeout for its whole answer.
func startDrillLoad(url, header, agent string, rate int, timeout time.Duration) *drillLoad {
	l := &drillLoad{url: url, header: http.CanonicalHeaderKey(header), agent: agent, timeout: timeout,
		stop: make(chan struct{}), done: make(chan struct{})}
	l.tr = &http.Transport{
		Proxy:               nil, // straight to the load balancer: a proxy would add its own retries and connections
		DialContext:         (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: timeout,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   true,
	}
	l.client = &http.Client{Transport: l.tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse // a redirect is an answer, not a success (it is not 2xx)
	}}
	every := time.Second / time.Duration(rate)
	go func() {
		defer close(l.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			l.fire()
			select {
			case <-l.stop:
				return
			case <-t.C:
			}
		}
	}()
	return l
}

// fire sends one request, unless too many are in flight already.
func (l *drillLoad) fire() {
	if l.inFlight.Load() >= drillMaxInFlight {
		l.mu.Lock()
		l.skipped++
		l.mu.Unlock()
		return
	}
	l.inFlight.Add(1)
	l.wg.Go(func() {
		defer l.inFlight.Add(-1)
		l.record(l.one())
	})
}

// one sends one request and reads its whole answer.
func (l *drillLoad) one() drillSample {
	s := drillSample{start: time.Now()}
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	got := false
	trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) { got, s.newConn = true, !ci.Reused }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, l.url, nil)
	if err != nil {
		s.err, s.end = err.Error(), time.Now()
		return s
	}
	req.Header.Set("User-Agent", l.agent)
	req.Header.Set("Cache-Control", "no-cache") // a cache on the way must not answer for a server that is gone
	res, err := l.client.Do(req)
	if err != nil {
		s.err, s.timeout, s.end = errText(err), isTimeout(ctx, err), time.Now()
		s.newConn = s.newConn || !got // no connection at all: the dial failed
		return s
	}
	_, err = io.Copy(io.Discard, io.LimitReader(res.Body, drillMaxBody))
	res.Body.Close()
	s.end, s.code = time.Now(), res.StatusCode
	if err != nil {
		s.err, s.timeout = "reading the answer: "+errText(err), isTimeout(ctx, err)
	}
	if v := res.Header.Get(l.header); v != "" {
		s.ident, s.by = v, l.header
	} else if v := res.Header.Get(instanceHeader); v != "" {
		s.ident, s.by = v, instanceHeader
	}
	return s
}

func (l *drillLoad) record(s drillSample) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.samples = append(l.samples, s)
	if s.ok() {
		l.ok++
		if s.ident != "" {
			l.last = s.ident
		}
	} else {
		l.failed++
	}
}

// progress is the running count: requests finished, succeeded, failed, and
// the node the last success came from.
func (l *drillLoad) progress() (done, ok, failed int, last string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.samples), l.ok, l.failed, l.last
}

// finish stops sending, waits for the requests in flight (each ends within
// the timeout) and returns every sample, in the order they were sent, and
// the number of sends skipped.
func (l *drillLoad) finish() ([]drillSample, int) {
	close(l.stop)
	<-l.done
	l.wg.Wait()
	l.tr.CloseIdleConnections()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]drillSample(nil), l.samples...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	return out, l.skipped
}

func isTimeout(ctx context.Context, err error) bool {
	var ne net.Error
	return ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// errText is a transport error without the request's method and URL,
// which every sample shares.
func errText(err error) string {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	return err.Error()
}

// analyzeDrill summarizes the samples around the step-down sent at
// stepDown: the counts, the longest gap, who served before and the first
// answer of a new active. It fills the measurement fields of the result.
func analyzeDrill(samples []drillSample, stepDown time.Time) node.DrillResult {
	var r node.DrillResult
	if len(samples) == 0 {
		return r
	}
	r.Requests = len(samples)
	first, last := samples[0].start, samples[0].end
	var oks []drillSample
	for _, s := range samples {
		first = minTime(first, s.start)
		last = maxTime(last, s.end)
		if s.ok() {
			oks = append(oks, s)
			continue
		}
		if r.Failed == 0 {
			r.FirstFailure = s.describe(stepDown)
		}
		r.Failed++
		if s.newConn {
			r.FailedNewConns++
		}
		if s.end.Before(stepDown) {
			r.FailedBefore++
		}
		switch {
		case s.timeout:
			r.Timeouts++
		case s.err != "":
			r.Errors++
		default:
			if r.FailedStatuses == nil {
				r.FailedStatuses = map[string]int{}
			}
			r.FailedStatuses[strconv.Itoa(s.code)]++
		}
	}
	r.Succeeded = len(oks)
	sort.SliceStable(oks, func(i, j int) bool { return oks[i].end.Before(oks[j].end) })

	// The longest time without a successful answer: between the ends of
	// consecutive successes, from the first request sent to the first
	// success, and from the last success to the end of the last request.
	var gap time.Duration
	var gapFrom time.Time
	prev := first
	for _, s := range append(oks, drillSample{end: last}) {
		if d := s.end.Sub(prev); d > gap {
			gap, gapFrom = d, prev
		}
		prev = maxTime(prev, s.end)
	}
	r.LongestGapMS = ms(gap)
	if gap > 0 {
		r.GapStartMS = ms(gapFrom.Sub(stepDown))
	}

	// Who served: the last named answer before the step-down, then the
	// first answer after it from another node (or a newer term).
	var old *drillSample
	for i := range oks {
		if s := &oks[i]; s.ident != "" && s.end.Before(stepDown) {
			old = s
		}
	}
	for _, s := range oks {
		if s.ident != "" && r.IdentifiedBy == "" {
			r.IdentifiedBy = s.by
		}
	}
	if old == nil {
		return r
	}
	r.OldActive, r.IdentifiedBy = old.ident, old.by
	for _, s := range oks {
		if s.ident != "" && !s.end.Before(stepDown) && newActive(*old, s) {
			r.NewActive, r.IdentifiedBy = s.ident, s.by
			d := ms(s.end.Sub(stepDown))
			r.NewActiveMS = &d
			break
		}
	}
	return r
}

// newActive reports whether s was served by another active than old: by
// the identify header, another node or a newer term (the same node may
// win the lease again); by X-Instance, another instance.
func newActive(old, s drillSample) bool {
	if old.by == s.by && old.by != instanceHeader {
		on, ot, ok1 := proxy.ParseIdentify(old.ident)
		sn, st, ok2 := proxy.ParseIdentify(s.ident)
		if ok1 && ok2 {
			return sn != on || st > ot
		}
	}
	return s.ident != old.ident || s.by != old.by
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// fmtDur prints a duration for people: "4.2 ms", "38 ms", "1.52 s".
func fmtDur(d time.Duration) string {
	switch a := d.Abs(); {
	case a < 10*time.Millisecond:
		return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) + " ms"
	case a < time.Second:
		return strconv.FormatInt(d.Round(time.Millisecond).Milliseconds(), 10) + " ms"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + " s"
}

// fmtOffset is a time relative to the step-down: "31 ms after the
// step-down", "1.20 s before the step-down".
func fmtOffset(d time.Duration) string {
	switch {
	case d.Abs() < 50*time.Microsecond:
		return "at the step-down"
	case d < 0:
		return fmtDur(-d) + " before the step-down"
	}
	return fmtDur(d) + " after the step-down"
}
