//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// rateResult is the outcome of a fixed-rate run.
type rateResult struct {
	lat  []time.Duration // one per successful request
	errs int
}

func (r rateResult) summary() string {
	return fmt.Sprintf("n=%d errors=%d p50=%s p99=%s p99.9=%s max=%s", len(r.lat), r.errs,
		pct(r.lat, 50), pct(r.lat, 99), pct(r.lat, 99.9), pct(r.lat, 100))
}

// pct is the p-th percentile (nearest rank) of d, which it sorts.
func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(float64(len(d))*p/100+0.5) - 1
	return d[min(max(i, 0), len(d)-1)]
}

// rateLoad sends GET url at a fixed rate (open loop) for dur over at most
// conns keep-alive connections (opened before the run, unmeasured), one
// worker per connection, and measures
// each request from the moment a worker takes it (the request's own
// latency). The dispatcher sends requests at their scheduled times
// (start + i/rate); when it wakes late it catches up, as wrk2 does. With
// conns workers, a request waits for a worker only if conns requests are
// already outstanding (errors then show as a low n, not a hidden queue).
func rateLoad(ctx context.Context, url string, rps int, dur time.Duration, conns int) (rateResult, error) {
	if rps <= 0 || dur <= 0 || conns <= 0 {
		return rateResult{}, fmt.Errorf("rate, duration and conns must be positive")
	}
	tr := &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	n := int(dur.Seconds() * float64(rps))
	jobs := make(chan struct{}, n)
	var (
		mu  sync.Mutex
		res rateResult
		wg  sync.WaitGroup
	)
	res.lat = make([]time.Duration, 0, n)
	// Open the connections first, unmeasured: the run measures requests
	// on keep-alive connections, not connection setup (which would
	// otherwise be up to conns samples of each run, more than 1% of a
	// 5 s run at 1,000 req/s: its p99).
	var warm sync.WaitGroup
	for range conns {
		warm.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if resp, err := client.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	warm.Wait()
	for range conns {
		wg.Go(func() {
			for range jobs {
				start := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				resp, err := client.Do(req)
				ok := err == nil
				if ok {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					ok = err == nil && resp.StatusCode == http.StatusOK
				}
				d := time.Since(start)
				mu.Lock()
				if ok {
					res.lat = append(res.lat, d)
				} else {
					res.errs++
				}
				mu.Unlock()
			}
		})
	}
	interval := time.Second / time.Duration(rps)
	t0 := time.Now()
	for i := range n {
		if d := time.Until(t0.Add(time.Duration(i) * interval)); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
		}
		if ctx.Err() != nil {
			break
		}
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	return res, ctx.Err()
}
