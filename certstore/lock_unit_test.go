package certstore

// Lock timing on a fake blob service inside a testing/synctest bubble: the
// poll, the renewal cadence, a transient renewal failure, and a lost lease,
// all in virtual time.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/batonproxy/baton/internal/azure"
)

// fakeLeases answers the lease calls of one blob like the blob service:
// one lease at a time with an expiry, in (virtual) time. failRenew makes
// renewals answer 503.
type fakeLeases struct {
	mu        sync.Mutex
	holder    string
	expires   time.Time
	failRenew bool
	loseAcks  int                    // answers to successful acquires lost on the way back
	calls     map[string][]time.Time // by lease action
}

func (f *fakeLeases) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = make(map[string][]time.Time)
	}
	action := header(r, "x-ms-lease-action")
	id := header(r, "x-ms-lease-id")
	if action == "acquire" {
		id = header(r, "x-ms-proposed-lease-id")
	}
	f.calls[action] = append(f.calls[action], time.Now())
	now := time.Now()
	held := f.holder != "" && now.Before(f.expires)
	switch {
	case !strings.Contains(r.URL.RawQuery, "comp=lease"):
		return answer(r, http.StatusBadRequest, "UnsupportedByFake"), nil
	case action == "acquire" && held && f.holder != id:
		return answer(r, http.StatusConflict, "LeaseAlreadyPresent"), nil
	case action == "acquire":
		f.holder, f.expires = id, now.Add(azure.MinLeaseDuration)
		if f.loseAcks > 0 {
			f.loseAcks--
			return nil, errors.New("test: connection reset")
		}
		return answer(r, http.StatusCreated, ""), nil
	case action == "renew" && f.failRenew:
		return answer(r, http.StatusServiceUnavailable, "ServerBusy"), nil
	case action == "renew" && f.holder == id:
		// Azure renews an expired lease too if nobody took it.
		f.expires = now.Add(azure.MinLeaseDuration)
		return answer(r, http.StatusOK, ""), nil
	case action == "release" && f.holder == id:
		f.holder = ""
		return answer(r, http.StatusOK, ""), nil
	default:
		return answer(r, http.StatusConflict, "LeaseIdMismatchWithLeaseOperation"), nil
	}
}

// header looks a header up case-insensitively: the SDK sets its x-ms-*
// headers without canonicalising their names.
func header(r *http.Request, name string) string {
	for k, v := range r.Header {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

func (f *fakeLeases) count(action string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls[action])
}

// take makes another holder take the lease (as after an expiry).
func (f *fakeLeases) take(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.holder, f.expires = id, time.Now().Add(azure.MinLeaseDuration)
}

func (f *fakeLeases) setFailRenew(v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failRenew = v
}

func answer(r *http.Request, status int, code string) *http.Response {
	h := http.Header{}
	if code != "" {
		h.Set("x-ms-error-code", code)
	}
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader("")), Request: r}
}

func newFakeStorage(t *testing.T, f *fakeLeases) *Storage {
	t.Helper()
	o := validOptions()
	o.LockTTL = azure.MinLeaseDuration
	o.Client.CallTimeout = time.Second
	o.Client.Transport = f
	s, err := New(o, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLockPollsUntilFree(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeLeases{}
		f.take("other")
		s := newFakeStorage(t, f)
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.Lock(ctx, "x"); err != nil {
			t.Fatal(err)
		}
		// The other holder never renews: free after 15 s; polls of
		// 0.75-1.25 s notice it within one poll.
		waited := time.Since(start)
		if waited < azure.MinLeaseDuration || waited > azure.MinLeaseDuration+1250*time.Millisecond {
			t.Errorf("Lock waited %v, want between %v and one poll later", waited, azure.MinLeaseDuration)
		}
		if n := f.count("acquire"); n < 12 || n > 21 {
			t.Errorf("%d acquire attempts in %v, want one per ~1 s poll", n, waited)
		}
		if err := s.Unlock(context.Background(), "x"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestLockRenewal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeLeases{}
		s := newFakeStorage(t, f)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := s.Lock(ctx, "x"); err != nil {
			t.Fatal(err)
		}
		// Renewed every 5 s (LockTTL/3): held past the 15 s lease.
		time.Sleep(31 * time.Second)
		synctest.Wait()
		if n := f.count("renew"); n != 6 {
			t.Errorf("%d renewals in 31 s, want 6 (every 5 s)", n)
		}
		if ok, err := s.TryLock(ctx, "x"); ok || err != nil {
			t.Errorf("TryLock by the holder's own storage: %v %v, want false", ok, err)
		}
		other := newFakeStorage(t, f)
		if ok, err := other.TryLock(ctx, "x"); ok || err != nil {
			t.Errorf("TryLock by another storage after 31 s: %v %v, want false (renewed)", ok, err)
		}

		// Renewals fail for 10 s (two ticks, each three tries): the lock is
		// kept, and renewed again once the storage answers.
		f.setFailRenew(true)
		time.Sleep(10 * time.Second)
		f.setFailRenew(false)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if err := s.RenewLockLease(ctx, "x", time.Hour); err != nil {
			t.Errorf("RenewLockLease after a transient failure: %v", err)
		}

		// Another holder takes the lease: the next renewal finds out, the
		// renewal goroutine ends, and certmagic's RenewLockLease fails.
		f.take("other")
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if err := s.RenewLockLease(ctx, "x", time.Hour); !errors.Is(err, ErrLockLost) {
			t.Errorf("RenewLockLease after losing the lease: %v, want ErrLockLost", err)
		}
		renews := f.count("renew")
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if n := f.count("renew"); n != renews {
			t.Errorf("%d renewals after the lease was lost, want none", n-renews)
		}
		if err := s.Unlock(ctx, "x"); err != nil {
			t.Errorf("Unlock of a lost lock: %v, want nil", err)
		}
		if n := f.count("release"); n != 0 {
			t.Errorf("%d releases of a lost lease, want none", n)
		}
	})
}

func TestUnlockReleasesAndCloseReleasesAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeLeases{}
		s := newFakeStorage(t, f)
		ctx, cancel := context.WithCancel(context.Background())
		if err := s.Lock(ctx, "x"); err != nil {
			t.Fatal(err)
		}
		cancel() // Unlock releases even with a canceled ctx
		if err := s.Unlock(ctx, "x"); err != nil {
			t.Fatal(err)
		}
		if n := f.count("release"); n != 1 {
			t.Errorf("%d releases, want 1", n)
		}
		yctx, ycancel := context.WithTimeout(context.Background(), time.Minute)
		defer ycancel()
		if err := s.Lock(yctx, "y"); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := f.count("release"); n != 2 {
			t.Errorf("%d releases after Close, want 2", n)
		}
	})
}

// TestLockAcquireAnswerLost: the storage grants the lease but the answer is
// lost (three times: a whole call with its retries, then one more). Lock
// retries with the same lease ID and gets its own lease at once instead of
// waiting out an orphaned one.
func TestLockAcquireAnswerLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeLeases{loseAcks: 4}
		s := newFakeStorage(t, f)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		if err := s.Lock(ctx, "x"); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Lock took %v after lost answers, want about one poll, not the %v lease", d, azure.MinLeaseDuration)
		}
		if err := s.Unlock(ctx, "x"); err != nil {
			t.Fatal(err)
		}
	})
}
