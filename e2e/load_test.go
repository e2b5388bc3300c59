//go:build linux

package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The load client: workers, each with one keep-alive connection through
// HAProxy (it dials a new one, again through HAProxy, when the server
// closes it), a pause between requests, bounded in count and duration.
const (
	loadWorkers   = 8
	loadPace      = 20 * time.Millisecond // pause after each request, per worker
	loadMaxPerWkr = 10_000
)

type loader struct {
	url  string
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup

	mu      sync.Mutex
	results []Request
	scanned int // recovered() has looked at results[:scanned]
	found   *Request
}

// startLoad starts the workers; they end at Stop, after maxDur, or after
// loadMaxPerWkr requests each, whichever comes first. Stop runs at the end
// of the test in any case.
func startLoad(t *testing.T, url string, maxDur time.Duration) *loader {
	l := &loader{url: url, stop: make(chan struct{})}
	deadline := time.Now().Add(maxDur)
	for w := range loadWorkers {
		l.wg.Go(func() { l.worker(w, deadline) })
	}
	t.Cleanup(func() { l.Stop() })
	return l
}

func (l *loader) worker(id int, deadline time.Time) {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
		MaxConnsPerHost:     1,
		MaxIdleConnsPerHost: 1,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: clientTimeout}
	pause := time.NewTimer(0)
	defer pause.Stop()
	for range loadMaxPerWkr {
		select {
		case <-l.stop:
			return
		default:
		}
		if time.Now().After(deadline) {
			return
		}
		r := Request{Worker: id, Start: time.Now()}
		trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) { r.NewConn = !ci.Reused }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, l.url+"/", nil)
		res, err := c.Do(req)
		if err != nil {
			r.Err = err.Error()
		} else {
			r.Close = res.Close
			body, rerr := io.ReadAll(io.LimitReader(res.Body, 4096))
			res.Body.Close()
			r.Code, r.Instance = res.StatusCode, res.Header.Get("X-Instance")
			r.Term = termOf(string(body))
			if rerr != nil {
				r.Err = "read body: " + rerr.Error()
			}
		}
		r.End = time.Now()
		l.mu.Lock()
		l.results = append(l.results, r)
		l.mu.Unlock()
		pause.Reset(loadPace)
		select {
		case <-l.stop:
			return
		case <-pause.C:
		}
	}
}

// termOf reads "term=N" from a demoapp answer.
func termOf(body string) uint64 {
	for f := range strings.FieldsSeq(body) {
		if v, ok := strings.CutPrefix(f, "term="); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			return n
		}
	}
	return 0
}

// Stop ends the workers (each finishes its current request, bounded by
// the client timeout) and returns every result, sorted by start.
func (l *loader) Stop() []Request {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]Request(nil), l.results...)
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// snapshot returns a copy of the results so far.
func (l *loader) snapshot() []Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Request(nil), l.results...)
}

// waitRecovered waits (at most limit) for a request answered with 200
// under a term newer than old and returns it.
func (l *loader) waitRecovered(old uint64, limit time.Duration) (Request, bool) {
	deadline := time.Now().Add(limit)
	for {
		l.mu.Lock()
		for ; l.scanned < len(l.results); l.scanned++ {
			if r := l.results[l.scanned]; r.OK() && r.Term > old && l.found == nil {
				l.found = &r
			}
		}
		found := l.found
		l.mu.Unlock()
		if found != nil {
			return *found, true
		}
		if time.Now().After(deadline) {
			return Request{}, false
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// waitOK waits until at least n requests got 200 from instance since from.
func (l *loader) waitOK(t *testing.T, instance string, from time.Time, n int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		got := 0
		for _, r := range l.snapshot() {
			if r.OK() && r.Instance == instance && !r.Start.Before(from) {
				got++
			}
		}
		if got >= n {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("load: fewer than %d answers from %s within %s", n, instance, limit)
}
