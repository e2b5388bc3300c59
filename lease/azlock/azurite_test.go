package azlock

// Lock-level tests of the Azure Blob backend against a real Azurite.

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/batonproxy/baton/internal/azure"
	"github.com/batonproxy/baton/internal/azure/azuritetest"
	"github.com/batonproxy/baton/lease"
	"go.uber.org/zap/zaptest"
)

const testLeaseDur = 15 * time.Second

// countingTransport counts the requests it forwards, per lock, and keeps
// their send times.
type countingTransport struct {
	rt    http.RoundTripper
	n     atomic.Int64
	mu    sync.Mutex
	times []time.Time
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	c.mu.Lock()
	c.times = append(c.times, time.Now())
	c.mu.Unlock()
	return c.rt.RoundTrip(r)
}

// rate returns the request rate per hour between from and to, measured
// from the first to the last request in that window (so the window's
// edges do not add or drop a fraction of a period), and the count.
func (c *countingTransport) rate(from, to time.Time) (perHour float64, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var first, last time.Time
	for _, at := range c.times {
		if at.Before(from) || at.After(to) {
			continue
		}
		if n == 0 {
			first = at
		}
		last = at
		n++
	}
	if n < 2 {
		return 0, n
	}
	return float64(n-1) * float64(time.Hour) / float64(last.Sub(first)), n
}

// testTransport returns an HTTP transport of the test's own whose idle
// connections are closed at the end (no goroutines left behind).
func testTransport(t testing.TB) *countingTransport {
	tr := &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return &countingTransport{rt: tr}
}

type lockOpt func(*Options)

// newAzuriteLock returns a lock on blob (in container "baton") of az via
// its connection string; opts may change anything.
func newAzuriteLock(t testing.TB, az *azuritetest.Azurite, blob string, opts ...lockOpt) (*Lock, *countingTransport) {
	t.Helper()
	ct := testTransport(t)
	o := Options{Container: "baton", Blob: blob, Options: azure.Options{
		Auth:             azure.AuthConnectionString,
		ConnectionString: az.ConnectionString(),
		CallTimeout:      time.Second,
		Transport:        ct,
	}}
	for _, f := range opts {
		f(&o)
	}
	l, err := New(o, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l, ct
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustAcquire(t *testing.T, l *Lock, name string) lease.Record {
	t.Helper()
	rec, err := l.Acquire(ctxT(t, 10*time.Second), lease.Record{Holder: name, AdvertiseURL: "http://" + name + ":80"}, testLeaseDur)
	if err != nil {
		t.Fatalf("%s: Acquire: %v", name, err)
	}
	if rec.Holder != name || rec.AdvertiseURL != "http://"+name+":80" || rec.AcquiredAt.IsZero() {
		t.Fatalf("%s: Acquire record = %+v", name, rec)
	}
	return rec
}

// TestAzBlobAzurite runs the lock- and elector-level tests that share one
// Azurite (it takes seconds to start). The long ones (each waits for a
// 15 s lease to expire, or measures a steady state) run in parallel once
// the others are done. Goroutine leaks are checked by the package's
// TestMain. TestAzBlobElectorStorageOutage has an Azurite of its own.
func TestAzBlobAzurite(t *testing.T) {
	t.Parallel()
	az := azuritetest.Start(t)
	t.Run("lock", func(t *testing.T) { testAzBlobLock(t, az) })
	t.Run("elector failover on release", func(t *testing.T) { testElectorFailoverOnRelease(t, az) })
	t.Run("elector terms 1 2 3", func(t *testing.T) { testElectorTerms(t, az) })
	t.Run("elector slow storage", func(t *testing.T) { testElectorSlowStorage(t, az) })
	t.Run("lock lost after expiry", func(t *testing.T) { t.Parallel(); testLockLostAfterExpiry(t, az) })
	t.Run("elector killed holder", func(t *testing.T) { t.Parallel(); testElectorKilledHolder(t, az) })
	t.Run("transactions per hour", func(t *testing.T) { t.Parallel(); testTransactionsPerHour(t, az) })
	t.Run("adopted lease has the adopter's duration", func(t *testing.T) { t.Parallel(); testAdoptSetsDuration(t, az) })
	t.Run("elector takeover after a crash", func(t *testing.T) { testElectorTakeover(t, az) })
	t.Run("elector handover to a named node", func(t *testing.T) { testElectorHandover(t, az) })
	t.Run("standby transactions with the link", func(t *testing.T) { t.Parallel(); testStandbyTransactionsWithLink(t, az) })
}

func testAzBlobLock(t *testing.T, az *azuritetest.Azurite) {
	t.Run("create if missing, racing", func(t *testing.T) {
		// Ten locks on a container and blob that do not exist yet try at
		// once: every creation race is harmless and exactly one wins.
		const n = 10
		var (
			wg      sync.WaitGroup
			winners atomic.Int32
			errs    = make(chan error, n)
			recs    = make(chan lease.Record, n)
		)
		start := make(chan struct{})
		for i := range n {
			l, _ := newAzuriteLock(t, az, "race", func(o *Options) { o.Container = "race-container" })
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				rec, err := l.Acquire(ctxT(t, 10*time.Second), lease.Record{Holder: string(rune('a' + i))}, testLeaseDur)
				switch {
				case err == nil:
					winners.Add(1)
					recs <- rec
				case errors.Is(err, lease.ErrHeld):
				default:
					errs <- err
				}
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		close(recs)
		for err := range errs {
			t.Errorf("Acquire in the race: %v", err)
		}
		if got := winners.Load(); got != 1 {
			t.Fatalf("%d locks acquired the new lease, want exactly 1", got)
		}
		if rec := <-recs; rec.Term != 1 {
			t.Errorf("first term = %d, want 1", rec.Term)
		}
	})

	t.Run("held, renew, release, lost", func(t *testing.T) {
		a, _ := newAzuriteLock(t, az, "basic")
		b, _ := newAzuriteLock(t, az, "basic")
		if a.LeaseID() == b.LeaseID() || a.LeaseID() == "" {
			t.Fatalf("lease IDs %q and %q: want distinct, non-empty", a.LeaseID(), b.LeaseID())
		}
		recA := mustAcquire(t, a, "node-a")

		got, err := b.Acquire(ctxT(t, 5*time.Second), lease.Record{Holder: "node-b"}, testLeaseDur)
		if !errors.Is(err, lease.ErrHeld) {
			t.Fatalf("b.Acquire while a holds: err = %v, want lease.ErrHeld", err)
		}
		if got.Holder != "node-a" || got.Term != recA.Term || got.AdvertiseURL != recA.AdvertiseURL || !got.AcquiredAt.Equal(recA.AcquiredAt) {
			t.Errorf("holder record on lease.ErrHeld = %+v, want %+v", got, recA)
		}
		if err := a.Renew(ctxT(t, 5*time.Second), testLeaseDur); err != nil {
			t.Fatalf("a.Renew: %v", err)
		}
		if err := b.Renew(ctxT(t, 5*time.Second), testLeaseDur); !errors.Is(err, lease.ErrLost) {
			t.Errorf("b.Renew of a lease it never had: err = %v, want lease.ErrLost", err)
		}
		if err := b.Release(ctxT(t, 5*time.Second)); err != nil {
			t.Errorf("b.Release of a lease it does not hold: %v, want nil", err)
		}
		rec, ok, err := b.Read(ctxT(t, 5*time.Second))
		if err != nil || !ok || rec.Holder != "node-a" || rec.Term != recA.Term {
			t.Errorf("Read while a holds = %+v, %v, %v", rec, ok, err)
		}

		if err := a.Release(ctxT(t, 5*time.Second)); err != nil {
			t.Fatalf("a.Release: %v", err)
		}
		if err := a.Release(ctxT(t, 5*time.Second)); err != nil {
			t.Errorf("second a.Release: %v, want nil", err)
		}
		rec, ok, err = b.Read(ctxT(t, 5*time.Second))
		if err != nil || ok || rec.Term != recA.Term {
			t.Errorf("Read after release = %+v, %v, %v; want not held, term %d kept", rec, ok, err, recA.Term)
		}
		recB := mustAcquire(t, b, "node-b")
		if recB.Term != recA.Term+1 {
			t.Errorf("b's term = %d, want %d", recB.Term, recA.Term+1)
		}
		if err := a.Renew(ctxT(t, 5*time.Second), testLeaseDur); !errors.Is(err, lease.ErrLost) {
			t.Errorf("a.Renew after b took the lease: err = %v, want lease.ErrLost", err)
		}
		if err := a.Release(ctxT(t, 5*time.Second)); err != nil {
			t.Errorf("a.Release of b's lease: %v, want nil", err)
		}
		if err := b.Renew(ctxT(t, 5*time.Second), testLeaseDur); err != nil {
			t.Errorf("b.Renew after a's release attempt: %v (a must not have released b's lease)", err)
		}
		if err := b.Release(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("own lease re-acquired, same name elsewhere refused", func(t *testing.T) {
		a, _ := newAzuriteLock(t, az, "own")
		twin, _ := newAzuriteLock(t, az, "own")
		rec1 := mustAcquire(t, a, "node-a")
		// A process that uses the same node name has another lease ID.
		if _, err := twin.Acquire(ctxT(t, 5*time.Second), lease.Record{Holder: "node-a"}, testLeaseDur); !errors.Is(err, lease.ErrHeld) {
			t.Fatalf("same name, other lock: %v, want lease.ErrHeld", err)
		}
		// Our own lease (e.g. after a renew that timed out on our side).
		rec2 := mustAcquire(t, a, "node-a")
		if rec2.Term != rec1.Term+1 {
			t.Errorf("re-acquired own lease: term %d, want %d", rec2.Term, rec1.Term+1)
		}
		if err := a.Release(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("chosen lease id", func(t *testing.T) {
		const id = "AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE"
		l, _ := newAzuriteLock(t, az, "chosen", func(o *Options) { o.LeaseID = id })
		if l.LeaseID() != strings.ToLower(id) {
			t.Errorf("LeaseID() = %q, want %q", l.LeaseID(), strings.ToLower(id))
		}
		mustAcquire(t, l, "node-a")
		// Another process given the same ID would be the same holder: the
		// ID really is the one on the storage.
		same, _ := newAzuriteLock(t, az, "chosen", func(o *Options) { o.LeaseID = id })
		if err := same.Renew(ctxT(t, 5*time.Second), testLeaseDur); err != nil {
			t.Errorf("Renew by a lock with the same chosen ID: %v", err)
		}
		if err := l.Release(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("handover: change, adopt, release by id", func(t *testing.T) {
		a, _ := newAzuriteLock(t, az, "handover")
		b, _ := newAzuriteLock(t, az, "handover")
		c, _ := newAzuriteLock(t, az, "handover")
		recA := mustAcquire(t, a, "node-a")

		// Adopting from an ID that does not hold the lease fails.
		if _, err := b.Adopt(ctxT(t, 5*time.Second), c.LeaseID(), lease.Record{Holder: "node-b"}, testLeaseDur); !errors.Is(err, lease.ErrLost) {
			t.Errorf("Adopt from an ID that holds nothing: %v, want ErrLost", err)
		}
		if _, err := b.Adopt(ctxT(t, 5*time.Second), "not-a-guid", lease.Record{Holder: "node-b"}, testLeaseDur); !errors.Is(err, lease.ErrConfig) {
			t.Errorf("Adopt from a bad ID: %v, want ErrConfig", err)
		}
		if err := c.Change(ctxT(t, 5*time.Second), b.LeaseID()); !errors.Is(err, lease.ErrLost) {
			t.Errorf("Change by a lock that does not hold the lease: %v, want ErrLost", err)
		}

		// Pull: b takes a's lease over under a's ID.
		recB, err := b.Adopt(ctxT(t, 5*time.Second), a.LeaseID(), lease.Record{Holder: "node-b", AdvertiseURL: "http://node-b:80"}, testLeaseDur)
		if err != nil || recB.Term != recA.Term+1 || recB.Holder != "node-b" || recB.AdvertiseURL != "http://node-b:80" || recB.AcquiredAt.IsZero() {
			t.Fatalf("b.Adopt(a's ID) = %+v, %v; want node-b with term %d", recB, err, recA.Term+1)
		}
		if err := a.Renew(ctxT(t, 5*time.Second), testLeaseDur); !errors.Is(err, lease.ErrLost) {
			t.Errorf("a.Renew after b adopted its lease: %v, want ErrLost", err)
		}
		if err := b.Renew(ctxT(t, 5*time.Second), testLeaseDur); err != nil {
			t.Errorf("b.Renew after the adoption: %v", err)
		}
		if rec, ok, err := c.Read(ctxT(t, 5*time.Second)); err != nil || !ok || rec.Holder != "node-b" || rec.Term != recB.Term {
			t.Errorf("Read after the adoption = %+v, %v, %v", rec, ok, err)
		}

		// Push: b moves its lease to c's ID; until c adopts it nobody can
		// take it, and b no longer holds it.
		if err := b.Change(ctxT(t, 5*time.Second), c.LeaseID()); err != nil {
			t.Fatalf("b.Change to c's ID: %v", err)
		}
		if err := b.Renew(ctxT(t, 5*time.Second), testLeaseDur); !errors.Is(err, lease.ErrLost) {
			t.Errorf("b.Renew after its change: %v, want ErrLost", err)
		}
		if _, err := a.Acquire(ctxT(t, 5*time.Second), lease.Record{Holder: "node-a"}, testLeaseDur); !errors.Is(err, lease.ErrHeld) {
			t.Errorf("a.Acquire during the handover: %v, want ErrHeld", err)
		}
		recC, err := c.Adopt(ctxT(t, 5*time.Second), c.LeaseID(), lease.Record{Holder: "node-c"}, testLeaseDur)
		if err != nil || recC.Term != recB.Term+1 || recC.Holder != "node-c" {
			t.Fatalf("c.Adopt(its own ID) = %+v, %v; want node-c with term %d", recC, err, recB.Term+1)
		}
		if err := c.Renew(ctxT(t, 5*time.Second), testLeaseDur); err != nil {
			t.Errorf("c.Renew after the adoption: %v", err)
		}

		// Release by ID: a frees c's lease (a handover cleanup); again is
		// no error.
		if err := a.ReleaseID(ctxT(t, 5*time.Second), strings.ToUpper(c.LeaseID())); err != nil {
			t.Fatalf("a.ReleaseID(c's ID): %v", err)
		}
		if rec, ok, err := a.Read(ctxT(t, 5*time.Second)); err != nil || ok || rec.Term != recC.Term {
			t.Errorf("Read after ReleaseID = %+v, %v, %v; want free, term %d kept", rec, ok, err, recC.Term)
		}
		if err := a.ReleaseID(ctxT(t, 5*time.Second), c.LeaseID()); err != nil {
			t.Errorf("second ReleaseID: %v, want nil", err)
		}
		if err := a.ReleaseID(ctxT(t, 5*time.Second), "nope"); !errors.Is(err, lease.ErrConfig) {
			t.Errorf("ReleaseID of a bad ID: %v, want ErrConfig", err)
		}
		if err := c.Renew(ctxT(t, 5*time.Second), testLeaseDur); !errors.Is(err, lease.ErrLost) {
			t.Errorf("c.Renew after its lease was released by ID: %v, want ErrLost", err)
		}
	})

	t.Run("terms 1 2 3 and holder records", func(t *testing.T) {
		locks := make([]*Lock, 3)
		for i := range locks {
			locks[i], _ = newAzuriteLock(t, az, "terms")
		}
		names := []string{"n1", "n2", "n3"}
		for i, l := range locks {
			rec := mustAcquire(t, l, names[i])
			if rec.Term != uint64(i+1) {
				t.Errorf("acquisition %d: term %d, want %d", i+1, rec.Term, i+1)
			}
			got, ok, err := locks[(i+1)%3].Read(ctxT(t, 5*time.Second))
			if err != nil || !ok || got.Holder != names[i] || got.Term != uint64(i+1) || got.AdvertiseURL != "http://"+names[i]+":80" {
				t.Errorf("Read after acquisition %d = %+v, %v, %v", i+1, got, ok, err)
			}
			if err := l.Release(ctxT(t, 5*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("metadata keys come back canonicalised", func(t *testing.T) {
		l, _ := newAzuriteLock(t, az, "canon")
		rec := mustAcquire(t, l, "node with spaces/é")
		defer l.Release(context.Background())
		// Read the raw metadata with the SDK: Go's HTTP client hands the
		// keys back as "Term", "Advertise_url", ...
		c, err := azblob.NewClientFromConnectionString(az.ConnectionString(), &azblob.ClientOptions{
			ClientOptions: azcore.ClientOptions{Transport: &http.Client{Transport: testTransport(t)}},
		})
		if err != nil {
			t.Fatal(err)
		}
		props, err := c.ServiceClient().NewContainerClient("baton").NewBlobClient("canon").GetProperties(ctxT(t, 5*time.Second), nil)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for k := range props.Metadata {
			keys = append(keys, k)
			if k == strings.ToLower(k) {
				t.Errorf("metadata key %q came back lower-case; the canonicalisation this test guards against did not happen", k)
			}
		}
		if len(keys) != 4 {
			t.Errorf("metadata keys = %v, want term, holder, advertise_url, acquired_at", keys)
		}
		got, ok, err := l.Read(ctxT(t, 5*time.Second))
		if err != nil || !ok || got.Holder != rec.Holder || got.Term != rec.Term || !got.AcquiredAt.Equal(rec.AcquiredAt) {
			t.Errorf("Read = %+v, %v, %v; want %+v", got, ok, err, rec)
		}
	})

	t.Run("bad account key is lease.ErrConfig", func(t *testing.T) {
		badKey := "c2VjcmV0LWJ1dC13cm9uZy1rZXktMDEyMzQ1Njc4OWFiY2RlZg==" // base64, wrong
		for _, auth := range []string{azure.AuthSharedKey, azure.AuthConnectionString} {
			l, _ := newAzuriteLock(t, az, "basic", func(o *Options) {
				o.Auth = auth
				o.AccountURL = az.URL
				o.AccountKey = badKey
				o.ConnectionString = strings.Replace(az.ConnectionString(), azuritetest.AccountKey, badKey, 1)
			})
			_, err := l.Acquire(ctxT(t, 5*time.Second), lease.Record{Holder: "x"}, testLeaseDur)
			if !errors.Is(err, lease.ErrConfig) || !strings.Contains(err.Error(), "rejected our credentials") {
				t.Errorf("%s: Acquire with a bad key: %v, want lease.ErrConfig", auth, err)
			}
			t.Logf("%s: %v", auth, err)
			if err != nil && strings.Contains(err.Error(), badKey) {
				t.Errorf("%s: error contains the key: %v", auth, err)
			}
			if _, _, err := l.Read(ctxT(t, 5*time.Second)); !errors.Is(err, lease.ErrConfig) {
				t.Errorf("%s: Read with a bad key: %v, want lease.ErrConfig", auth, err)
			}
		}
	})

	t.Run("shared key with the account name from the URL", func(t *testing.T) {
		l, _ := newAzuriteLock(t, az, "sharedkey", func(o *Options) {
			o.Auth = azure.AuthSharedKey
			o.AccountURL = az.URL
			o.AccountKey = azuritetest.AccountKey
		})
		mustAcquire(t, l, "sk")
		if err := l.Release(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("sas token", func(t *testing.T) {
		cred, err := azblob.NewSharedKeyCredential(azuritetest.AccountName, azuritetest.AccountKey)
		if err != nil {
			t.Fatal(err)
		}
		perms := sas.AccountPermissions{Read: true, Write: true, Create: true, Add: true}
		types := sas.AccountResourceTypes{Container: true, Object: true}
		qp, err := sas.AccountSignatureValues{
			Protocol:      sas.ProtocolHTTPSandHTTP,
			ExpiryTime:    time.Now().Add(time.Hour).UTC(),
			Permissions:   perms.String(),
			ResourceTypes: types.String(),
		}.SignWithSharedKey(cred)
		if err != nil {
			t.Fatal(err)
		}
		token := qp.Encode()
		l, _ := newAzuriteLock(t, az, "sas", func(o *Options) {
			o.Auth, o.AccountURL, o.SASToken = azure.AuthSAS, az.URL, "?"+token
		})
		mustAcquire(t, l, "sas")
		if err := l.Release(ctxT(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		// A token without write permission: the lock cannot be taken, and
		// that is a configuration error.
		perms = sas.AccountPermissions{Read: true}
		qp, err = sas.AccountSignatureValues{
			Protocol: sas.ProtocolHTTPSandHTTP, ExpiryTime: time.Now().Add(time.Hour).UTC(),
			Permissions: perms.String(), ResourceTypes: types.String(),
		}.SignWithSharedKey(cred)
		if err != nil {
			t.Fatal(err)
		}
		ro, _ := newAzuriteLock(t, az, "sas", func(o *Options) {
			o.Auth, o.AccountURL, o.SASToken = azure.AuthSAS, az.URL, qp.Encode()
		})
		_, err = ro.Acquire(ctxT(t, 5*time.Second), lease.Record{Holder: "ro"}, testLeaseDur)
		if !errors.Is(err, lease.ErrConfig) || strings.Contains(err.Error(), qp.Signature()) || !strings.Contains(err.Error(), "the SAS token must allow") {
			t.Errorf("read-only SAS: Acquire: %v, want lease.ErrConfig without the signature", err)
		}
		t.Logf("read-only SAS: %v", err)
	})

	t.Run("slow storage: calls end at their deadline", func(t *testing.T) {
		proxy := azuritetest.NewDelayProxy(t, az.Addr())
		l, _ := newAzuriteLock(t, az, "slow", func(o *Options) {
			o.Auth = azure.AuthSharedKey
			o.AccountURL = proxy.URL("/" + azuritetest.AccountName)
			o.AccountKey = azuritetest.AccountKey
			o.CallTimeout = 300 * time.Millisecond
		})
		mustAcquire(t, l, "slow")
		defer l.Release(context.Background())

		proxy.SetDelay(5 * time.Second)
		const deadline = 1200 * time.Millisecond
		const slack = 250 * time.Millisecond
		for _, tc := range []struct {
			name string
			call func(context.Context) error
		}{
			{"renew", func(ctx context.Context) error { return l.Renew(ctx, testLeaseDur) }},
			{"read", func(ctx context.Context) error { _, _, err := l.Read(ctx); return err }},
			{"acquire", func(ctx context.Context) error {
				_, err := l.Acquire(ctx, lease.Record{Holder: "x"}, testLeaseDur)
				return err
			}},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			start := time.Now()
			err := tc.call(ctx)
			took := time.Since(start)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s through a 5 s delay: err = %v, want a deadline error", tc.name, err)
			}
			if took > deadline+slack {
				t.Errorf("%s returned after %v, want within %v + %v", tc.name, took, deadline, slack)
			}
			t.Logf("%s: returned after %v with %v", tc.name, took.Round(time.Millisecond), err)
		}

		// Without a caller deadline the lock bounds the call itself.
		start := time.Now()
		err := l.Renew(context.Background(), testLeaseDur)
		if took, max := time.Since(start), 3*300*time.Millisecond+2*time.Second+slack; err == nil || took > max {
			t.Errorf("renew without ctx deadline: %v after %v, want an error within %v", err, took, max)
		}

		proxy.SetDelay(0)
		if err := l.Renew(ctxT(t, 5*time.Second), testLeaseDur); err != nil {
			t.Errorf("renew once the delay is gone: %v", err)
		}
	})
}

func testLockLostAfterExpiry(t *testing.T, az *azuritetest.Azurite) {
	a, _ := newAzuriteLock(t, az, "expiry")
	b, _ := newAzuriteLock(t, az, "expiry")
	recA := mustAcquire(t, a, "node-a")
	acquiredAt := time.Now()
	// b must be refused until the storage expires a's lease, then win.
	var recB lease.Record
	for {
		rec, err := b.Acquire(ctxT(t, 5*time.Second), lease.Record{Holder: "node-b"}, testLeaseDur)
		if err == nil {
			recB = rec
			break
		}
		if !errors.Is(err, lease.ErrHeld) {
			t.Fatalf("b.Acquire: %v", err)
		}
		if time.Since(acquiredAt) > testLeaseDur+5*time.Second {
			t.Fatalf("b still refused %v after a's acquisition", time.Since(acquiredAt))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if took := time.Since(acquiredAt); took < testLeaseDur-100*time.Millisecond {
		t.Fatalf("b acquired %v after a: before a's %v lease expired", took, testLeaseDur)
	}
	if recB.Term != recA.Term+1 {
		t.Errorf("b's term %d, want %d", recB.Term, recA.Term+1)
	}
	if err := a.Renew(ctxT(t, 5*time.Second), testLeaseDur); !errors.Is(err, lease.ErrLost) {
		t.Errorf("a.Renew after b took the expired lease: %v, want lease.ErrLost", err)
	}
	if err := b.Release(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
}

// testAdoptSetsDuration: a lease acquired for 60 s and adopted by a node
// whose lease.duration is 15 s expires 15 s after the adoption. Were the
// adopter to keep the 60 s lease, it would be held longer than the adopter
// fences by, which is harmless; the dangerous case is the reverse (adopting
// a 15 s lease with a 60 s lease.duration) and it is the same call: Adopt
// acquires for its own duration.
func testAdoptSetsDuration(t *testing.T, az *azuritetest.Azurite) {
	a, _ := newAzuriteLock(t, az, "adopt-duration")
	b, _ := newAzuriteLock(t, az, "adopt-duration")
	c, _ := newAzuriteLock(t, az, "adopt-duration")
	if _, err := a.Acquire(ctxT(t, 10*time.Second), lease.Record{Holder: "node-a"}, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Adopt(ctxT(t, 5*time.Second), a.LeaseID(), lease.Record{Holder: "node-b"}, testLeaseDur); err != nil {
		t.Fatalf("b.Adopt: %v", err)
	}
	adopted := time.Now()
	for {
		_, err := c.Acquire(ctxT(t, 5*time.Second), lease.Record{Holder: "node-c"}, testLeaseDur)
		if err == nil {
			break
		}
		if !errors.Is(err, lease.ErrHeld) {
			t.Fatalf("c.Acquire: %v", err)
		}
		if time.Since(adopted) > testLeaseDur+5*time.Second {
			t.Fatalf("lease still held %v after an adoption for %v: it kept the 60s duration", time.Since(adopted), testLeaseDur)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if took := time.Since(adopted); took < testLeaseDur-100*time.Millisecond {
		t.Fatalf("c acquired %v after the adoption, before its %v lease expired", took, testLeaseDur)
	}
	if err := c.Release(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
}
