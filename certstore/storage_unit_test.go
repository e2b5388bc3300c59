package certstore

// Fast tests without a storage service: options, key mapping, lease IDs,
// jitter, and lock bookkeeping errors.

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/batonproxy/baton/internal/azure"
)

func validOptions() Options {
	return Options{Client: azure.Options{
		AccountURL: "https://acct.blob.core.windows.net",
		Auth:       azure.AuthSharedKey,
		AccountKey: "a2V5LWZvci11bml0LXRlc3Rz",
	}}
}

func TestNewOptions(t *testing.T) {
	const secret = "c2VjcmV0LXNpZ25hdHVyZQ"
	tests := []struct {
		name string
		mod  func(*Options)
		want string // "" means valid
	}{
		{"valid", func(*Options) {}, ""},
		{"bad container", func(o *Options) { o.Container = "Certs_1" }, "container name"},
		{"ttl too short", func(o *Options) { o.LockTTL = 10 * time.Second }, "lock ttl 10s"},
		{"ttl too long", func(o *Options) { o.LockTTL = 61 * time.Second }, "lock ttl 1m1s"},
		{"ttl fraction", func(o *Options) { o.LockTTL = 20500 * time.Millisecond }, "whole number of seconds"},
		{"prefix only slash", func(o *Options) { o.Prefix = "/" }, "prefix"},
		{"prefix too long", func(o *Options) { o.Prefix = strings.Repeat("p", 600) }, "prefix"},
		{"no account url", func(o *Options) { o.Client.AccountURL = "" }, "account_url is empty"},
		{"unknown auth", func(o *Options) { o.Client.Auth = "password" }, `auth "password" is not one of`},
		{"bad key, no secret", func(o *Options) { o.Client.AccountKey = "not base64 " + secret }, "not valid base64"},
		{"bad connection string, no secret", func(o *Options) {
			o.Client = azure.Options{Auth: azure.AuthConnectionString, ConnectionString: "AccountName=a;AccountKey=" + secret + ";Bogus"}
		}, "connection string"},
		{"sas", func(o *Options) {
			o.Client = azure.Options{Auth: azure.AuthSAS, AccountURL: "https://acct.blob.core.windows.net", SASToken: "?sv=1&sig=x"}
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := validOptions()
			tc.mod(&o)
			s, err := New(o, zap.NewNop())
			if tc.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if s.prefix != DefaultPrefix || s.containerNm != DefaultContainer || s.ttl != DefaultLockTTL || s.renewEvery != DefaultLockTTL/3 {
					t.Errorf("defaults: prefix %q container %q ttl %v renew %v", s.prefix, s.containerNm, s.ttl, s.renewEvery)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want ErrConfig containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error holds the secret: %v", err)
			}
		})
	}
	if _, err := New(validOptions(), nil); err == nil {
		t.Error("New with a nil logger: want an error")
	}
}

func TestKeyMapping(t *testing.T) {
	o := validOptions()
	o.Prefix = "/tls/certs" // leading slash dropped, trailing slash added
	s, err := New(o, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"certificates/acme/a.crt": "tls/certs/certificates/acme/a.crt",
		"last_clean.json":         "tls/certs/last_clean.json",
	} {
		if got, err := s.blobName(key); err != nil || got != want {
			t.Errorf("blobName(%q) = %q, %v; want %q", key, got, err, want)
		}
	}
	for _, bad := range []string{"", "/abs", "dir/", strings.Repeat("k", 1020)} {
		if _, err := s.blobName(bad); err == nil {
			t.Errorf("blobName(%q): want an error", bad)
		}
	}
	if got, _ := s.lockBlob("issue_cert_a.example"); got != "tls/certs/locks/issue_cert_a.example" {
		t.Errorf("lockBlob = %q", got)
	}
	if _, err := s.lockBlob(""); err == nil {
		t.Error("lockBlob(\"\"): want an error")
	}
	for dir, want := range map[string]string{"": "tls/certs/", "/": "tls/certs/", "certificates": "tls/certs/certificates/", "a/b/": "tls/certs/a/b/"} {
		if got := s.dirPrefix(dir); got != want {
			t.Errorf("dirPrefix(%q) = %q, want %q", dir, got, want)
		}
	}
	if got := s.String(); got != "certstore:azblob:baton/tls/certs/" {
		t.Errorf("String() = %q", got)
	}
}

func TestJitter(t *testing.T) {
	s, err := New(validOptions(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := time.Hour, time.Duration(0)
	for range 1000 {
		d := s.jitter()
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 750*time.Millisecond || hi > 1250*time.Millisecond || hi-lo < 300*time.Millisecond {
		t.Errorf("jitter range [%v, %v], want spread within [750ms, 1.25s]", lo, hi)
	}
}

func TestUnlockNotHeld(t *testing.T) {
	s, err := New(validOptions(), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Unlock(context.Background(), "never"); err == nil {
		t.Error("Unlock of a lock never taken: want an error")
	}
	if err := s.RenewLockLease(context.Background(), "never", time.Minute); !errors.Is(err, ErrLockLost) {
		t.Errorf("RenewLockLease of a lock never taken: %v, want ErrLockLost", err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Errorf("Close with nothing held: %v", err)
	}
	if err := s.Lock(context.Background(), "x"); !errors.Is(err, ErrClosed) {
		t.Errorf("Lock after Close: %v, want ErrClosed", err)
	}
	if ok, err := s.TryLock(context.Background(), "x"); ok || !errors.Is(err, ErrClosed) {
		t.Errorf("TryLock after Close: %v %v, want ErrClosed", ok, err)
	}
}
