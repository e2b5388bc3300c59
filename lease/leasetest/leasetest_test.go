package leasetest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/batonproxy/baton/lease"
	"github.com/batonproxy/baton/lease/leasetest"
)

func TestStoreRules(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := t.Context()
		s := leasetest.NewStore()
		a, b := s.NewLock("a"), s.NewLock("b")
		if a.ID() == b.ID() {
			t.Fatal("two locks share a lease ID")
		}
		rec, err := a.Acquire(ctx, lease.Record{Holder: "a", AdvertiseURL: "http://a"}, 15*time.Second)
		if err != nil || rec.Term != 1 || rec.Holder != "a" || rec.AdvertiseURL != "http://a" {
			t.Fatalf("Acquire = %+v, %v", rec, err)
		}
		if rec, err := b.Acquire(ctx, lease.Record{Holder: "b"}, 15*time.Second); !errors.Is(err, lease.ErrHeld) || rec.Holder != "a" {
			t.Errorf("contended Acquire = %+v, %v", rec, err)
		}
		if err := b.Renew(ctx, time.Second); !errors.Is(err, lease.ErrLost) {
			t.Errorf("Renew of a lease not held = %v", err)
		}
		time.Sleep(15 * time.Second)
		if _, ok := s.Holder(); ok {
			t.Error("lease valid at its expiry")
		}
		if err := a.Renew(ctx, 15*time.Second); err != nil {
			t.Errorf("renew of own expired lease nobody took: %v", err)
		}
		s.Break()
		if err := a.Renew(ctx, 15*time.Second); !errors.Is(err, lease.ErrLost) {
			t.Errorf("Renew after Break = %v", err)
		}
		if rec, err := b.Acquire(ctx, lease.Record{Holder: "b"}, 15*time.Second); err != nil || rec.Term != 2 {
			t.Errorf("Acquire after Break = %+v, %v", rec, err)
		}
		if err := a.Release(ctx); err != nil {
			t.Errorf("Release of a lease not held = %v", err)
		}
		if err := b.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if rec, ok, err := a.Read(ctx); err != nil || ok || rec.Term != 2 || rec.Holder != "" {
			t.Errorf("Read after Release = %+v, %v, %v", rec, ok, err)
		}
	})
}

func TestActions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := leasetest.NewStore()
		l := s.NewLock("a")
		boom := fmt.Errorf("%w: bad key", lease.ErrConfig)
		l.Set(leasetest.Acquire, leasetest.Fail(boom))
		if _, err := l.Acquire(t.Context(), lease.Record{Holder: "a"}, time.Minute); !errors.Is(err, lease.ErrConfig) {
			t.Errorf("Fail: %v", err)
		}
		if _, ok := s.Holder(); ok {
			t.Error("a failed call reached the store")
		}

		l.Set(leasetest.Acquire, leasetest.Hang())
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		start := time.Now()
		_, err := l.Acquire(ctx, lease.Record{Holder: "a"}, time.Minute)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 2*time.Second {
			t.Errorf("Hang returned %v after %s", err, time.Since(start))
		}

		l.Set(leasetest.Acquire, leasetest.Delay(300*time.Millisecond))
		start = time.Now()
		if _, err := l.Acquire(t.Context(), lease.Record{Holder: "a"}, time.Minute); err != nil || time.Since(start) != 300*time.Millisecond {
			t.Errorf("Delay: %v after %s", err, time.Since(start))
		}

		gate := make(chan struct{})
		l.Set(leasetest.Renew, leasetest.HangIgnoringContext(gate))
		done := make(chan error)
		ctx, cancel = context.WithCancel(t.Context())
		go func() { done <- l.Renew(ctx, time.Minute) }()
		cancel()
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("HangIgnoringContext returned on cancel")
		default:
		}
		close(gate)
		if err := <-done; err == nil {
			t.Error("released hung call succeeded")
		}

		calls := l.Calls()
		if len(calls) != 4 || l.Count(leasetest.Acquire) != 3 || calls[1].Deadline.IsZero() || calls[2].End.Sub(calls[2].Start) != 300*time.Millisecond {
			t.Errorf("calls: %+v", calls)
		}
	})
}

// recorder catches the errors a script reports.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestScript(t *testing.T) {
	ctx := t.Context()
	s := leasetest.NewStore()
	l := s.NewLock("a")
	rec := &recorder{TB: t}
	l.Script(rec,
		leasetest.Step{Op: leasetest.Acquire},
		leasetest.Step{Op: leasetest.Renew, Action: leasetest.Fail(errors.New("busy"))},
	)
	if _, err := l.Acquire(ctx, lease.Record{Holder: "a"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := l.Renew(ctx, time.Minute); err == nil || !strings.Contains(err.Error(), "busy") {
		t.Errorf("scripted failure: %v", err)
	}
	if len(rec.errs) != 0 || l.Remaining() != 0 {
		t.Fatalf("script followed, but: %q, %d remaining", rec.errs, l.Remaining())
	}
	if err := l.Release(ctx); err == nil {
		t.Error("call past the end of the script succeeded")
	}
	if _, ok := s.Holder(); !ok {
		t.Error("unexpected Release reached the store")
	}
	l.Script(rec, leasetest.Step{Op: leasetest.Read})
	if err := l.Renew(ctx, time.Minute); err == nil {
		t.Error("out-of-order call succeeded")
	}
	if len(rec.errs) != 2 || !strings.Contains(rec.errs[0], "unexpected release") || !strings.Contains(rec.errs[1], "script expects read") {
		t.Errorf("reported: %q", rec.errs)
	}
	l.Unscript()
	if err := l.Release(ctx); err != nil {
		t.Error(err)
	}
}
