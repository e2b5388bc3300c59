package certstore

// Contract tests of the Storage against a real Azurite.

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap/zaptest"

	"github.com/batonproxy/baton/internal/azure"
	"github.com/batonproxy/baton/internal/azure/azuritetest"
)

// cutTransport forwards requests until cut, then fails them all: a holder
// cut off from the storage, which cannot renew (nor release).
type cutTransport struct {
	rt  http.RoundTripper
	cut atomic.Bool
}

func (c *cutTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.cut.Load() {
		return nil, errors.New("test: storage unreachable")
	}
	return c.rt.RoundTrip(r)
}

type storeOpt func(*Options)

// newAzStorage returns a Storage on az (container "baton" unless changed)
// with a transport of the test's own whose idle connections are closed at
// the end, and that transport.
func newAzStorage(t testing.TB, az *azuritetest.Azurite, opts ...storeOpt) (*Storage, *cutTransport) {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	ct := &cutTransport{rt: tr}
	o := Options{
		Client: azure.Options{
			Auth:             azure.AuthConnectionString,
			ConnectionString: az.ConnectionString(),
			CallTimeout:      time.Second,
			Transport:        ct,
		},
		LockTTL: azure.MinLeaseDuration,
	}
	for _, f := range opts {
		f(&o)
	}
	s, err := New(o, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ct.cut.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, ct
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestAzurite runs every Azurite test on one Azurite (it takes seconds to
// start). The lock-expiry tests wait for 15 s leases and run in parallel
// once the others are done.
func TestAzurite(t *testing.T) {
	t.Parallel()
	az := azuritetest.Start(t)
	t.Run("key-value contract", func(t *testing.T) { testKeyValue(t, az) })
	t.Run("container created if missing", func(t *testing.T) { testContainerCreated(t, az) })
	t.Run("lock excludes under contention", func(t *testing.T) { testLockContention(t, az) })
	t.Run("trylock and local waiters", func(t *testing.T) { testTryLockLocal(t, az) })
	t.Run("lock freed when holder stops renewing", func(t *testing.T) { t.Parallel(); testLockHolderCut(t, az) })
	t.Run("lock held beyond ttl stays exclusive", func(t *testing.T) { t.Parallel(); testLockBeyondTTL(t, az) })
	t.Run("certmagic two nodes", func(t *testing.T) { t.Parallel(); testCertmagicTwoNodes(t, az) })
}

func testKeyValue(t *testing.T, az *azuritetest.Azurite) {
	s, _ := newAzStorage(t, az, func(o *Options) { o.Prefix = "kv/" })
	ctx := ctxT(t, 30*time.Second)

	// Empty storage: everything is missing.
	if _, err := s.Load(ctx, "a/b.crt"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing key: %v, want fs.ErrNotExist", err)
	}
	if _, err := s.Stat(ctx, "a/b.crt"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of a missing key: %v, want fs.ErrNotExist", err)
	}
	if _, err := s.List(ctx, "", true); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List of an empty storage: %v, want fs.ErrNotExist", err)
	}
	if s.Exists(ctx, "a") {
		t.Error("Exists on an empty storage: true")
	}
	if err := s.Delete(ctx, "a/b.crt"); err != nil {
		t.Errorf("Delete of a missing key: %v, want nil (certmagic contract)", err)
	}

	files := map[string]string{
		"certificates/ca/a.example/a.example.crt":  "cert A",
		"certificates/ca/a.example/a.example.key":  "key A",
		"certificates/ca/a.example/a.example.json": "{}",
		"certificates/ca/b.example/b.example.crt":  "cert B",
		"acme/ca/users/me/me.json":                 "user",
		"last_clean.json":                          "",
	}
	before := time.Now().Add(-2 * time.Second) // Azurite's clock, second resolution
	for k, v := range files {
		if err := s.Store(ctx, k, []byte(v)); err != nil {
			t.Fatalf("Store(%q): %v", k, err)
		}
	}
	for k, v := range files {
		got, err := s.Load(ctx, k)
		if err != nil || string(got) != v {
			t.Errorf("Load(%q) = %q, %v; want %q", k, got, err, v)
		}
	}
	if err := s.Store(ctx, "last_clean.json", []byte("overwritten")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Load(ctx, "last_clean.json"); string(got) != "overwritten" {
		t.Errorf("Load after overwrite = %q", got)
	}

	ki, err := s.Stat(ctx, "certificates/ca/a.example/a.example.crt")
	if err != nil || ki.Key != "certificates/ca/a.example/a.example.crt" || !ki.IsTerminal || ki.Size != int64(len("cert A")) ||
		ki.Modified.Before(before) || ki.Modified.After(time.Now().Add(2*time.Second)) {
		t.Errorf("Stat(file) = %+v, %v", ki, err)
	}
	ki, err = s.Stat(ctx, "certificates/ca")
	if err != nil || ki != (certmagic.KeyInfo{Key: "certificates/ca"}) {
		t.Errorf("Stat(dir) = %+v, %v; want a non-terminal key", ki, err)
	}
	for _, k := range []string{"certificates", "certificates/ca/b.example", "last_clean.json"} {
		if !s.Exists(ctx, k) {
			t.Errorf("Exists(%q) = false", k)
		}
	}
	for _, k := range []string{"certificates/c", "certificates/ca/a.example/a.example", "last"} {
		if s.Exists(ctx, k) {
			t.Errorf("Exists(%q) = true: a name prefix is not a key", k)
		}
	}

	lists := []struct {
		dir       string
		recursive bool
		want      []string
	}{
		{"", false, []string{"acme", "certificates", "last_clean.json"}},
		{"certificates", false, []string{"certificates/ca"}},
		{"certificates/ca", false, []string{"certificates/ca/a.example", "certificates/ca/b.example"}},
		{"certificates/ca/a.example", false, []string{
			"certificates/ca/a.example/a.example.crt", "certificates/ca/a.example/a.example.json", "certificates/ca/a.example/a.example.key"}},
		{"certificates", true, []string{
			"certificates/ca",
			"certificates/ca/a.example",
			"certificates/ca/a.example/a.example.crt", "certificates/ca/a.example/a.example.json", "certificates/ca/a.example/a.example.key",
			"certificates/ca/b.example",
			"certificates/ca/b.example/b.example.crt"}},
		{"acme", true, []string{"acme/ca", "acme/ca/users", "acme/ca/users/me", "acme/ca/users/me/me.json"}},
		{"last_clean.json", false, []string{}}, // a file: no children, no error
	}
	for _, l := range lists {
		got, err := s.List(ctx, l.dir, l.recursive)
		if err != nil || !reflect.DeepEqual(got, l.want) {
			t.Errorf("List(%q, %v) = %q, %v; want %q", l.dir, l.recursive, got, err, l.want)
		}
	}
	if _, err := s.List(ctx, "ocsp", false); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List of a missing directory: %v, want fs.ErrNotExist", err)
	}

	// Delete a file, then a whole directory.
	if err := s.Delete(ctx, "certificates/ca/b.example/b.example.crt"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, "certificates/ca/b.example/b.example.crt"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load after Delete: %v, want fs.ErrNotExist", err)
	}
	if s.Exists(ctx, "certificates/ca/b.example") {
		t.Error("directory still exists after its last key was deleted")
	}
	if err := s.Delete(ctx, "certificates"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.List(ctx, "certificates", true); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List after deleting the directory: %v, want fs.ErrNotExist", err)
	}
	if got, err := s.List(ctx, "", true); err != nil || !reflect.DeepEqual(got, []string{
		"acme", "acme/ca", "acme/ca/users", "acme/ca/users/me", "acme/ca/users/me/me.json", "last_clean.json"}) {
		t.Errorf("List after deletes = %q, %v", got, err)
	}

	// Another prefix in the same container sees none of it.
	other, _ := newAzStorage(t, az, func(o *Options) { o.Prefix = "kv2" })
	if _, err := other.List(ctx, "", true); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List under another prefix: %v, want fs.ErrNotExist", err)
	}

	// Canceled contexts are honoured.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Store(cctx, "x", []byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Store with a canceled ctx: %v, want context.Canceled", err)
	}
}

func testContainerCreated(t *testing.T, az *azuritetest.Azurite) {
	ctx := ctxT(t, 30*time.Second)
	// Two storages race to create the container by a Store and a Lock.
	a, _ := newAzStorage(t, az, func(o *Options) { o.Container = "fresh-certs" })
	b, _ := newAzStorage(t, az, func(o *Options) { o.Container = "fresh-certs" })
	var wg sync.WaitGroup
	var storeErr, lockErr error
	wg.Add(2)
	go func() { defer wg.Done(); storeErr = a.Store(ctx, "k", []byte("v")) }()
	go func() { defer wg.Done(); lockErr = b.Lock(ctx, "first") }()
	wg.Wait()
	if storeErr != nil || lockErr != nil {
		t.Fatalf("Store: %v; Lock: %v", storeErr, lockErr)
	}
	if err := b.Unlock(ctx, "first"); err != nil {
		t.Errorf("Unlock: %v", err)
	}
	if got, err := b.Load(ctx, "k"); err != nil || string(got) != "v" {
		t.Errorf("Load = %q, %v", got, err)
	}
	// The lock blob stays (empty), under locks/.
	if got, err := a.List(ctx, "locks", false); err != nil || !reflect.DeepEqual(got, []string{"locks/first"}) {
		t.Errorf("List(locks) = %q, %v", got, err)
	}
}

// testLockContention: four storages (four nodes) take one lock three times
// each; the critical sections never overlap.
func testLockContention(t *testing.T, az *azuritetest.Azurite) {
	const nodes, rounds = 4, 3
	ctx := ctxT(t, 60*time.Second)
	var (
		inside, maxInside atomic.Int32
		wg                sync.WaitGroup
		errs              = make(chan error, nodes*rounds)
		mu                sync.Mutex
		waits             []time.Duration
	)
	for range nodes {
		s, _ := newAzStorage(t, az)
		s.poll = 100 * time.Millisecond // keep the test fast
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				start := time.Now()
				if err := s.Lock(ctx, "contended"); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				waits = append(waits, time.Since(start))
				mu.Unlock()
				n := inside.Add(1)
				for {
					m := maxInside.Load()
					if n <= m || maxInside.CompareAndSwap(m, n) {
						break
					}
				}
				time.Sleep(50 * time.Millisecond) // the critical section
				inside.Add(-1)
				if err := s.Unlock(ctx, "contended"); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if m := maxInside.Load(); m != 1 {
		t.Errorf("%d holders inside the critical section at once, want 1", m)
	}
	var longest time.Duration
	for _, w := range waits {
		longest = max(longest, w)
	}
	t.Logf("%d acquisitions by %d nodes, longest wait %v", len(waits), nodes, longest)
}

func testTryLockLocal(t *testing.T, az *azuritetest.Azurite) {
	ctx := ctxT(t, 30*time.Second)
	a, _ := newAzStorage(t, az)
	b, _ := newAzStorage(t, az)
	if ok, err := a.TryLock(ctx, "try"); !ok || err != nil {
		t.Fatalf("a.TryLock of a free lock: %v, %v", ok, err)
	}
	if ok, err := b.TryLock(ctx, "try"); ok || err != nil {
		t.Errorf("b.TryLock while a holds it: %v, %v; want false, nil", ok, err)
	}
	if ok, err := a.TryLock(ctx, "try"); ok || err != nil {
		t.Errorf("a.TryLock while a holds it: %v, %v; want false, nil", ok, err)
	}
	if err := a.RenewLockLease(ctx, "try", time.Hour); err != nil {
		t.Errorf("RenewLockLease of a held lock: %v", err)
	}
	if err := b.RenewLockLease(ctx, "try", time.Hour); !errors.Is(err, ErrLockLost) {
		t.Errorf("b.RenewLockLease of a's lock: %v, want ErrLockLost", err)
	}

	// A second caller in the same process waits for the first and is woken
	// at its Unlock, without waiting for a poll: with a 10 s poll, a poller
	// would take seconds.
	a.poll = 10 * time.Second
	got := make(chan time.Time, 1)
	lockErr := make(chan error, 1)
	go func() {
		err := a.Lock(ctx, "try")
		got <- time.Now()
		lockErr <- err
	}()
	select {
	case <-got:
		t.Fatal("second local Lock returned while the first holds the lock")
	case <-time.After(300 * time.Millisecond):
	}
	unlocked := time.Now()
	if err := a.Unlock(ctx, "try"); err != nil {
		t.Fatal(err)
	}
	at := <-got
	if err := <-lockErr; err != nil {
		t.Fatalf("second local Lock: %v", err)
	}
	t.Logf("local waiter acquired %v after Unlock", at.Sub(unlocked))
	// A woken waiter takes one Azurite acquire, which a loaded machine can
	// stretch to hundreds of milliseconds; a poller would take 7.5 s or more.
	if d := at.Sub(unlocked); d > 3*time.Second {
		t.Errorf("local waiter took %v after Unlock, want well under the 10 s poll", d)
	}
	if err := a.Unlock(ctx, "try"); err != nil {
		t.Fatal(err)
	}
	if err := a.Unlock(ctx, "try"); err == nil {
		t.Error("second Unlock of a released lock: want an error")
	}

	// Lock honours ctx while it waits.
	if err := b.Lock(ctx, "try"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := a.Lock(wctx, "try"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lock while held, ctx expiring: %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Errorf("Lock returned %v after start, ctx deadline 1.5 s", d)
	}
	if err := b.Unlock(ctx, "try"); err != nil {
		t.Fatal(err)
	}
}

// testLockHolderCut: a holder is cut off from the storage (it cannot renew
// nor release, as if it had died). Another storage gets the lock once the
// 15 s lease expires, not before; when the first holder reaches the storage
// again it learns that it lost the lock.
func testLockHolderCut(t *testing.T, az *azuritetest.Azurite) {
	ctx := ctxT(t, 40*time.Second)
	a, cutA := newAzStorage(t, az)
	b, _ := newAzStorage(t, az)
	if err := a.Lock(ctx, "cut"); err != nil {
		t.Fatal(err)
	}
	acquired := time.Now()
	cutA.cut.Store(true)

	if err := b.Lock(ctx, "cut"); err != nil {
		t.Fatalf("b.Lock after a was cut off: %v", err)
	}
	waited := time.Since(acquired)
	t.Logf("b acquired the lock %v after a acquired it and stopped renewing (ttl %v)", waited, azure.MinLeaseDuration)
	if waited < azure.MinLeaseDuration-time.Second || waited > azure.MinLeaseDuration+4*time.Second {
		t.Errorf("b waited %v, want about the lease duration %v (poll ~1 s)", waited, azure.MinLeaseDuration)
	}

	cutA.cut.Store(false)
	if err := a.RenewLockLease(ctx, "cut", time.Minute); !errors.Is(err, ErrLockLost) {
		t.Errorf("a.RenewLockLease after losing the lock: %v, want ErrLockLost", err)
	}
	if err := a.Unlock(ctx, "cut"); err != nil {
		t.Errorf("a.Unlock of a lost lock: %v, want nil (nothing left to release)", err)
	}
	// b's lock was not disturbed by a's attempts.
	if err := b.RenewLockLease(ctx, "cut", time.Minute); err != nil {
		t.Errorf("b.RenewLockLease: %v", err)
	}
	if err := b.Unlock(ctx, "cut"); err != nil {
		t.Error(err)
	}
}

// testLockBeyondTTL: a holds the lock for 20 s with a 15 s lease; renewals
// keep b out the whole time, and b gets it within about a poll of a's
// Unlock.
func testLockBeyondTTL(t *testing.T, az *azuritetest.Azurite) {
	const hold = 20 * time.Second
	ctx := ctxT(t, 40*time.Second)
	a, _ := newAzStorage(t, az)
	b, _ := newAzStorage(t, az)
	if err := a.Lock(ctx, "long"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got := make(chan error, 1)
	go func() { got <- b.Lock(ctx, "long") }()
	select {
	case err := <-got:
		t.Fatalf("b.Lock returned after %v while a holds the lock: %v", time.Since(start), err)
	case <-time.After(hold):
	}
	unlocked := time.Now()
	if err := a.Unlock(ctx, "long"); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("b.Lock: %v", err)
	}
	handover := time.Since(unlocked)
	t.Logf("held %v with a %v lease; b acquired %v after a's Unlock", hold, azure.MinLeaseDuration, handover)
	if handover > 2*time.Second {
		t.Errorf("handover took %v, want about one poll (<= 1.25 s)", handover)
	}
	if err := b.Unlock(ctx, "long"); err != nil {
		t.Error(err)
	}
}
