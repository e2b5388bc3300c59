package azure

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/batonproxy/baton/internal/azure/azuritetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	errConfig = errors.New("test: misconfigured")
	errHeld   = errors.New("test: held")
	errLost   = errors.New("test: lost")
	kinds     = Kinds{Config: errConfig, Held: errHeld, Lost: errLost}
)

func TestCheckLeaseDuration(t *testing.T) {
	for _, d := range []time.Duration{15 * time.Second, 30 * time.Second, 60 * time.Second} {
		if err := CheckLeaseDuration("lease duration", d); err != nil {
			t.Errorf("CheckLeaseDuration(%v): %v", d, err)
		}
	}
	for _, d := range []time.Duration{0, -time.Second, 14 * time.Second, 61 * time.Second, 15500 * time.Millisecond} {
		err := CheckLeaseDuration("lock ttl", d)
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "lock ttl "+d.String()) {
			t.Errorf("CheckLeaseDuration(%v) = %v, want a *ConfigError naming it", d, err)
		}
	}
}

func TestLeaseIDs(t *testing.T) {
	seen := make(map[string]bool)
	for range 100 {
		id, err := NewLeaseID()
		if err != nil || CheckLeaseID(id) != nil || seen[id] || id[14] != '4' || !strings.ContainsRune("89ab", rune(id[19])) {
			t.Fatalf("NewLeaseID() = %q, %v: want a fresh v4 UUID", id, err)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "x", "3f2504e0-4f89-41d3-9a0c-0305e82c330", "3f2504e0-4f89-41d3-9a0c-0305e82c33011", "{3f2504e0-4f89-41d3-9a0c-0305e82c3301}", "3f2504e0_4f89_41d3_9a0c_0305e82c3301", "gf2504e0-4f89-41d3-9a0c-0305e82c3301"} {
		if CheckLeaseID(bad) == nil {
			t.Errorf("CheckLeaseID(%q): want an error", bad)
		}
	}
	if err := CheckLeaseID("3F2504E0-4F89-41D3-9A0C-0305E82C3301"); err != nil {
		t.Errorf("upper-case GUID: %v", err)
	}

	c, err := NewContainer(Options{AccountURL: "https://acct.blob.core.windows.net", Auth: AuthSharedKey, AccountKey: "a2V5"}, "baton", kinds, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.Lease("leader", LeaseOptions{})
	if err != nil || CheckLeaseID(l.ID()) != nil {
		t.Fatalf("Lease with a random ID: %v, %v", l, err)
	}
	l2, err := c.Lease("leader", LeaseOptions{ID: "3F2504E0-4F89-41D3-9A0C-0305E82C3301", Noun: "lock"})
	if err != nil || l2.ID() != "3f2504e0-4f89-41d3-9a0c-0305e82c3301" || l2.String() != "lock baton/leader" {
		t.Fatalf("Lease with a given ID: %v, %v", l2, err)
	}
	if _, err := c.Lease("leader", LeaseOptions{ID: "not-a-guid"}); !errors.Is(err, errConfig) {
		t.Errorf("Lease with a bad ID: %v, want the config kind", err)
	}
	if _, err := l.WithID("nope"); !errors.Is(err, errConfig) {
		t.Errorf("WithID with a bad ID: %v, want the config kind", err)
	}
	if _, err := c.Lease(strings.Repeat("b", 1025), LeaseOptions{}); !errors.Is(err, errConfig) {
		t.Errorf("Lease on a too long blob name: %v, want the config kind", err)
	}
	// Checked before any call (there is no server behind this client).
	if err := l.Acquire(context.Background(), 10*time.Second); !errors.Is(err, errConfig) || !strings.Contains(err.Error(), "lease duration 10s") {
		t.Errorf("Acquire(10s): %v, want the config kind", err)
	}
	if err := l.Change(context.Background(), "nope"); !errors.Is(err, errConfig) {
		t.Errorf("Change to a bad ID: %v, want the config kind", err)
	}
	if _, err := NewContainer(Options{AccountURL: "https://acct.blob.core.windows.net", Auth: AuthSharedKey, AccountKey: "a2V5"}, "Bad_Name", kinds, zap.NewNop()); !errors.Is(err, errConfig) {
		t.Errorf("NewContainer with a bad name: %v, want the config kind", err)
	}
	if _, err := NewContainer(Options{Auth: "password"}, "baton", kinds, zap.NewNop()); !errors.Is(err, errConfig) {
		t.Errorf("NewContainer with a bad auth: %v, want the config kind", err)
	}
}

func TestAccountNameFromURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://acct.blob.core.windows.net":             "acct",
		"https://acct.blob.core.usgovcloudapi.net/":      "acct",
		"https://acct.privatelink.blob.core.windows.net": "acct",
		"https://acct.blob.core.windows.net/baton":       "acct", // a host-style URL's path is no account
		"http://127.0.0.1:10000/devstoreaccount1":        "devstoreaccount1",
		"http://localhost:10000/devstoreaccount1/":       "devstoreaccount1",
		"http://[::1]:10000/devstoreaccount1":            "devstoreaccount1",
		"http://azurite:10000/devstoreaccount1":          "devstoreaccount1",
		"http://127.0.0.1:10000":                         "",
		"http://localhost:10000":                         "",
		"https://acct.blob.core.windows.net/?sig=x":      "",
		"https://user@acct.blob.core.windows.net":        "",
		"not a url": "",
	} {
		if got := AccountNameFromURL(in); got != want {
			t.Errorf("AccountNameFromURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// azuriteContainer returns container name of az with a transport of the
// test's own whose idle connections are closed at the end.
func azuriteContainer(t *testing.T, az *azuritetest.Azurite, name string) *Container {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := NewContainer(Options{Auth: AuthConnectionString, ConnectionString: az.ConnectionString(),
		CallTimeout: time.Second, Transport: tr}, name, kinds, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustLease(t *testing.T, c *Container, blob, id string) *Lease {
	t.Helper()
	l, err := c.Lease(blob, LeaseOptions{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestLeaseAzurite runs the primitive against a real Azurite.
func TestLeaseAzurite(t *testing.T) {
	t.Parallel()
	az := azuritetest.Start(t)
	c := azuriteContainer(t, az, "prim")

	t.Run("missing blob, acquire creates, held, renew, release", func(t *testing.T) {
		a := mustLease(t, c, "basic", "11111111-1111-4111-8111-111111111111")
		b := mustLease(t, c, "basic", "")
		p, err := a.Properties(ctxT(t))
		if err != nil || p.Exists {
			t.Fatalf("Properties of a missing container: %+v, %v; want not there, no error", p, err)
		}
		if err := a.Acquire(ctxT(t), 15*time.Second); err != nil {
			t.Fatalf("Acquire with container and blob missing: %v", err)
		}
		if a.ID() != "11111111-1111-4111-8111-111111111111" {
			t.Errorf("ID() = %q, want the chosen one", a.ID())
		}
		if err := a.Acquire(ctxT(t), 15*time.Second); err != nil {
			t.Errorf("Acquire by the holder again: %v", err)
		}
		if err := b.Acquire(ctxT(t), 15*time.Second); !errors.Is(err, errHeld) || !strings.Contains(err.Error(), "409 LeaseAlreadyPresent") {
			t.Errorf("Acquire by another ID: %v, want the held kind", err)
		}
		if err := a.Renew(ctxT(t)); err != nil {
			t.Errorf("Renew by the holder: %v", err)
		}
		if err := b.Renew(ctxT(t)); !errors.Is(err, errLost) {
			t.Errorf("Renew by another ID: %v, want the lost kind", err)
		}
		if err := b.Release(ctxT(t)); !errors.Is(err, errLost) {
			t.Errorf("Release by another ID: %v, want the lost kind", err)
		}
		if err := a.Release(ctxT(t)); err != nil {
			t.Fatalf("Release by the holder: %v", err)
		}
		if err := a.Release(ctxT(t)); !errors.Is(err, errLost) {
			t.Errorf("second Release: %v, want the lost kind", err)
		}
		if err := b.Acquire(ctxT(t), 15*time.Second); err != nil {
			t.Errorf("Acquire after the release: %v", err)
		}
		if err := b.Release(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("properties and metadata under the lease", func(t *testing.T) {
		a := mustLease(t, c, "meta", "")
		b := mustLease(t, c, "meta", "")
		if err := a.Acquire(ctxT(t), 15*time.Second); err != nil {
			t.Fatal(err)
		}
		defer a.Release(context.Background())
		p, err := a.HeldProperties(ctxT(t))
		if err != nil || !p.Exists || !p.Held() || p.State != StateLeased || p.ETag == "" {
			t.Fatalf("HeldProperties by the holder = %+v, %v", p, err)
		}
		if _, err := b.HeldProperties(ctxT(t)); !errors.Is(err, errLost) {
			t.Errorf("HeldProperties by another ID: %v, want the lost kind", err)
		}
		if err := a.SetMetadata(ctxT(t), map[string]string{"term": "3", "Holder": "node-a"}, p.ETag); err != nil {
			t.Fatalf("SetMetadata by the holder: %v", err)
		}
		if err := a.SetMetadata(ctxT(t), map[string]string{"term": "4"}, p.ETag); err == nil || errors.Is(err, errLost) || !strings.Contains(err.Error(), "412") {
			t.Errorf("SetMetadata with a stale ETag: %v, want a plain 412 error", err)
		}
		if err := b.SetMetadata(ctxT(t), map[string]string{"term": "9"}, ""); !errors.Is(err, errLost) {
			t.Errorf("SetMetadata by another ID: %v, want the lost kind", err)
		}
		got, err := b.Properties(ctxT(t))
		if err != nil || !got.Held() || got.Metadata["term"] != "3" || got.Metadata["holder"] != "node-a" || len(got.Metadata) != 2 {
			t.Errorf("Properties by another ID = %+v, %v; want held with term 3 and holder node-a (lower-case keys)", got, err)
		}
		if _, err := mustLease(t, c, "no-such-blob", "").HeldProperties(ctxT(t)); !errors.Is(err, errLost) {
			t.Errorf("HeldProperties of a missing blob: %v, want the lost kind", err)
		}
	})

	t.Run("change moves the lease to the proposed ID", func(t *testing.T) {
		old := mustLease(t, c, "change", "")
		proposed := mustLease(t, c, "change", "")
		if err := old.Acquire(ctxT(t), 15*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := old.Change(ctxT(t), strings.ToUpper(proposed.ID())); err != nil {
			t.Fatalf("Change by the holder: %v", err)
		}
		if old.ID() == proposed.ID() {
			t.Fatal("Change changed the handle's ID")
		}
		if err := old.Renew(ctxT(t)); !errors.Is(err, errLost) {
			t.Errorf("Renew by the old ID after the change: %v, want the lost kind", err)
		}
		if err := proposed.Renew(ctxT(t)); err != nil {
			t.Errorf("Renew by the new ID after the change: %v", err)
		}
		if _, err := proposed.HeldProperties(ctxT(t)); err != nil {
			t.Errorf("HeldProperties by the new ID: %v", err)
		}
		other := mustLease(t, c, "change", "")
		if err := other.Change(ctxT(t), other.ID()); !errors.Is(err, errLost) {
			t.Errorf("Change by an ID that does not hold the lease: %v, want the lost kind", err)
		}
		if err := old.Release(ctxT(t)); !errors.Is(err, errLost) {
			t.Errorf("Release by the old ID: %v, want the lost kind", err)
		}
		if err := proposed.Release(ctxT(t)); err != nil {
			t.Errorf("Release by the new ID: %v", err)
		}
		if err := old.Change(ctxT(t), proposed.ID()); !errors.Is(err, errLost) {
			t.Errorf("Change of a released lease: %v, want the lost kind", err)
		}
	})

	t.Run("break", func(t *testing.T) {
		a := mustLease(t, c, "break", "")
		b := mustLease(t, c, "break", "")
		if left, err := a.Break(ctxT(t), 0); err != nil || left != 0 {
			t.Errorf("Break of a missing blob: %v, %v; want 0, nil", left, err)
		}
		if err := a.Acquire(ctxT(t), 60*time.Second); err != nil {
			t.Fatal(err)
		}
		// Break with a period: breaking, nobody can acquire or renew.
		left, err := b.Break(ctxT(t), 30*time.Second)
		if err != nil || left <= 0 || left > 30*time.Second {
			t.Fatalf("Break(30s) by another ID: %v, %v; want the break period left", left, err)
		}
		if p, err := b.Properties(ctxT(t)); err != nil || p.State != StateBreaking || !p.Held() {
			t.Errorf("Properties while breaking = %+v, %v", p, err)
		}
		if err := b.Acquire(ctxT(t), 15*time.Second); !errors.Is(err, errHeld) {
			t.Errorf("Acquire while breaking: %v, want the held kind", err)
		}
		if err := a.Renew(ctxT(t)); !errors.Is(err, errLost) {
			t.Errorf("Renew by the holder while breaking: %v, want the lost kind", err)
		}
		if err := a.Change(ctxT(t), b.ID()); !errors.Is(err, errLost) {
			t.Errorf("Change while breaking: %v, want the lost kind", err)
		}
		// Break at once: broken, free for anybody.
		if left, err := b.Break(ctxT(t), 0); err != nil || left != 0 {
			t.Fatalf("Break(0): %v, %v; want 0, nil", left, err)
		}
		if p, err := b.Properties(ctxT(t)); err != nil || p.State != StateBroken || p.Held() {
			t.Errorf("Properties after the break = %+v, %v", p, err)
		}
		if err := a.Renew(ctxT(t)); !errors.Is(err, errLost) {
			t.Errorf("Renew of a broken lease: %v, want the lost kind", err)
		}
		if left, err := b.Break(ctxT(t), 0); err != nil || left != 0 {
			t.Errorf("Break of a broken lease: %v, %v; want 0, nil", left, err)
		}
		if err := b.Acquire(ctxT(t), 15*time.Second); err != nil {
			t.Errorf("Acquire after the break: %v", err)
		}
		if err := b.Release(ctxT(t)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("creation races", func(t *testing.T) {
		rc := azuriteContainer(t, az, "race")
		const n = 8
		errs := make(chan error, n)
		for range n {
			l := mustLease(t, rc, "race", "")
			go func() { errs <- l.Acquire(ctxT(t), 15*time.Second) }()
		}
		won := 0
		for range n {
			switch err := <-errs; {
			case err == nil:
				won++
			case !errors.Is(err, errHeld):
				t.Errorf("Acquire in the race: %v", err)
			}
		}
		if won != 1 {
			t.Errorf("%d acquisitions won, want 1", won)
		}
	})
}
