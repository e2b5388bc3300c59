package azlock

// Fast unit tests of the Azure Blob backend over a scripted HTTP transport:
// every request must match the next step of the script, and every step must
// be used.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonproxy/baton/internal/azure"
	"github.com/batonproxy/baton/lease"
	"go.uber.org/zap"
)

// step is one expected request and its scripted answer.
type step struct {
	op     string // from opOf: "HEAD blob", "PUT lease acquire", ...
	check  func(*http.Request) error
	status int               // answer status; 0 with block == true: wait for ctx
	code   string            // x-ms-error-code
	header map[string]string // extra answer headers
	block  bool              // hang until the request's context ends
	err    error             // transport error instead of an answer
}

type scriptTransport struct {
	t     *testing.T
	mu    sync.Mutex
	steps []step
	n     int
}

func newScript(t *testing.T, steps ...step) *scriptTransport {
	s := &scriptTransport{t: t, steps: steps}
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.n != len(s.steps) {
			t.Errorf("script: %d of %d steps used; next unused: %q", s.n, len(s.steps), s.steps[s.n].op)
		}
	})
	return s
}

// opOf names a storage request by what it does.
func opOf(r *http.Request) string {
	q := r.URL.Query()
	switch {
	case q.Get("restype") == "container" && r.Method == http.MethodPut:
		return "PUT container"
	case q.Get("comp") == "lease":
		return "PUT lease " + hdr(r, "x-ms-lease-action")
	case q.Get("comp") == "metadata":
		return "PUT metadata"
	case r.Method == http.MethodPut && hdr(r, "x-ms-blob-type") == "BlockBlob":
		return "PUT blob"
	case r.Method == http.MethodHead:
		return "HEAD blob"
	}
	return r.Method + " " + r.URL.RequestURI()
}

// hdr reads a request header whatever the case of its key: the SDK sets
// x-ms-* headers with lower-case keys, bypassing canonicalisation.
func hdr(r *http.Request, name string) string {
	for k, v := range r.Header {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

func (s *scriptTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	op := opOf(r)
	s.mu.Lock()
	if s.n >= len(s.steps) {
		s.mu.Unlock()
		s.t.Errorf("script: unexpected request %q (script done)", op)
		return nil, errors.New("unexpected request")
	}
	st := s.steps[s.n]
	s.n++
	s.mu.Unlock()
	if st.op != op {
		s.t.Errorf("script step %d: got request %q, want %q", s.n, op, st.op)
		return nil, errors.New("unexpected request")
	}
	if st.check != nil {
		if err := st.check(r); err != nil {
			s.t.Errorf("script step %d (%s): %v", s.n, op, err)
		}
	}
	if st.block {
		<-r.Context().Done()
		return nil, r.Context().Err()
	}
	if st.err != nil {
		return nil, st.err
	}
	h := http.Header{}
	h.Set("x-ms-request-id", fmt.Sprint(s.n))
	if st.code != "" {
		h.Set("x-ms-error-code", st.code)
	}
	for k, v := range st.header {
		h.Set(k, v)
	}
	return &http.Response{
		StatusCode: st.status,
		Status:     fmt.Sprintf("%d %s", st.status, http.StatusText(st.status)),
		Header:     h,
		Body:       io.NopCloser(strings.NewReader("")),
		Request:    r,
	}, nil
}

// Canned answers.
func ok(op string, status int) step { return step{op: op, status: status} }
func fail(op string, status int, code string) step {
	return step{op: op, status: status, code: code}
}

// leased answers a HEAD with the lease state and metadata; keys are sent in
// the canonical form the SDK sees from a real server.
func props(state string, meta map[string]string) step {
	h := map[string]string{"x-ms-lease-state": state, "ETag": `"0x8DC1"`}
	if state == "leased" {
		h["x-ms-lease-status"] = "locked"
	} else {
		h["x-ms-lease-status"] = "unlocked"
	}
	for k, v := range meta {
		h["x-ms-meta-"+k] = v
	}
	return step{op: "HEAD blob", status: 200, header: h}
}

var holderMeta = map[string]string{
	"term": "7", "holder": "node-a", "advertise_url": "http://10.0.0.4:80", "acquired_at": "2026-01-02T03:04:05.123456789Z",
}

func scriptedLock(t *testing.T, s *scriptTransport, mod ...lockOpt) *Lock {
	t.Helper()
	o := Options{Container: "baton", Blob: "leader", Options: azure.Options{
		AccountURL:  "https://acct.blob.core.windows.net",
		Auth:        azure.AuthSharedKey,
		AccountKey:  "a2V5LWZvci11bml0LXRlc3Rz",
		CallTimeout: time.Second,
		Transport:   s,
	}}
	for _, f := range mod {
		f(&o)
	}
	l, err := New(o, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestAzBlobRenewErrors(t *testing.T) {
	tests := []struct {
		name    string
		steps   []step
		want    error  // errors.Is target; nil means success
		wantMsg string // substring of the error
	}{
		{"ok", []step{ok("PUT lease renew", 200)}, nil, ""},
		{"id mismatch", []step{fail("PUT lease renew", 409, "LeaseIdMismatchWithLeaseOperation")}, lease.ErrLost, "409 LeaseIdMismatchWithLeaseOperation"},
		{"not present", []step{fail("PUT lease renew", 409, "LeaseNotPresentWithLeaseOperation")}, lease.ErrLost, ""},
		{"lost", []step{fail("PUT lease renew", 409, "LeaseLost")}, lease.ErrLost, ""},
		{"broken", []step{fail("PUT lease renew", 409, "LeaseIsBrokenAndCannotBeRenewed")}, lease.ErrLost, ""},
		{"blob gone", []step{fail("PUT lease renew", 404, "BlobNotFound")}, lease.ErrLost, ""},
		{"role missing", []step{fail("PUT lease renew", 403, "AuthorizationPermissionMismatch")}, lease.ErrConfig,
			"storage account rejected our credentials (403 AuthorizationPermissionMismatch): give this VM's identity the Storage Blob Data Contributor role on container baton"},
		{"bad key", []step{fail("PUT lease renew", 403, "AuthenticationFailed")}, lease.ErrConfig, "check the account key"},
		{"not authorized", []step{fail("PUT lease renew", 403, "AuthorizationFailure")}, lease.ErrConfig, "check the account key, its permissions, and the account's network rules"},
		{"firewall", []step{fail("PUT lease renew", 403, "AuthorizationSourceIPMismatch")}, lease.ErrConfig, "network rules do not admit this host"},
		{"unauthorized", []step{fail("PUT lease renew", 401, "")}, lease.ErrConfig, "401 Unauthorized"},
		{"no account", []step{fail("PUT lease renew", 404, "ResourceNotFound")}, lease.ErrConfig, "check account_url"},
		{"bad request", []step{fail("PUT lease renew", 400, "InvalidHeaderValue")}, lease.ErrConfig, "400 InvalidHeaderValue"},
		{"5xx retried then ok", []step{fail("PUT lease renew", 500, "InternalError"), fail("PUT lease renew", 503, "ServerBusy"), ok("PUT lease renew", 200)}, nil, ""},
		{"5xx exhausted", []step{fail("PUT lease renew", 503, "ServerBusy"), fail("PUT lease renew", 503, "ServerBusy"), fail("PUT lease renew", 503, "ServerBusy")}, nil, "storage unavailable (503 ServerBusy)"},
		{"429 retried", []step{fail("PUT lease renew", 429, "TooManyRequests"), ok("PUT lease renew", 200)}, nil, ""},
		{"network error retried", []step{{op: "PUT lease renew", err: errors.New("connection refused")}, ok("PUT lease renew", 200)}, nil, ""},
		{"other 409", []step{fail("PUT lease renew", 409, "SomethingNew")}, nil, "409 SomethingNew"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := scriptedLock(t, newScript(t, tc.steps...))
			err := l.Renew(ctxT(t, 5*time.Second), 15*time.Second)
			switch {
			case tc.want == nil && tc.wantMsg == "" && err != nil:
				t.Fatalf("Renew: %v, want nil", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("Renew: %v, want %v", err, tc.want)
			case tc.want == nil && tc.wantMsg != "" && (err == nil || errors.Is(err, lease.ErrConfig) || errors.Is(err, lease.ErrLost)):
				t.Fatalf("Renew: %v, want a plain (transient) error", err)
			}
			if tc.wantMsg != "" && !strings.Contains(fmt.Sprint(err), tc.wantMsg) {
				t.Errorf("Renew error %q does not contain %q", err, tc.wantMsg)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

func TestAzBlobReleaseErrors(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		want  error
	}{
		{"ok", []step{ok("PUT lease release", 200)}, nil},
		{"not ours", []step{fail("PUT lease release", 409, "LeaseIdMismatchWithLeaseOperation")}, nil},
		{"not present", []step{fail("PUT lease release", 409, "LeaseNotPresentWithLeaseOperation")}, nil},
		{"blob gone", []step{fail("PUT lease release", 404, "BlobNotFound")}, nil},
		{"container gone", []step{fail("PUT lease release", 404, "ContainerNotFound")}, nil},
		{"forbidden", []step{fail("PUT lease release", 403, "AuthorizationPermissionMismatch")}, lease.ErrConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := scriptedLock(t, newScript(t, tc.steps...))
			err := l.Release(ctxT(t, 5*time.Second))
			if (tc.want == nil && err != nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("Release: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestAzBlobRead(t *testing.T) {
	tests := []struct {
		name   string
		steps  []step
		want   lease.Record
		wantOK bool
		errIs  error
	}{
		{"leased", []step{props("leased", holderMeta)}, lease.Record{Holder: "node-a", AdvertiseURL: "http://10.0.0.4:80", Term: 7,
			AcquiredAt: time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)}, true, nil},
		{"breaking counts as held", []step{props("breaking", map[string]string{"term": "3"})}, lease.Record{Term: 3}, true, nil},
		{"expired keeps the term", []step{props("expired", map[string]string{"term": "3", "holder": "old"})}, lease.Record{Term: 3, Holder: "old"}, false, nil},
		{"new blob", []step{props("available", nil)}, lease.Record{}, false, nil},
		{"no blob", []step{fail("HEAD blob", 404, "BlobNotFound")}, lease.Record{}, false, nil},
		{"no container", []step{fail("HEAD blob", 404, "ContainerNotFound")}, lease.Record{}, false, nil},
		{"escaped holder", []step{props("leased", map[string]string{"holder": "n%C3%A9%20x%25"})}, lease.Record{Holder: "né x%"}, true, nil},
		{"bad term", []step{props("leased", map[string]string{"term": "x"})}, lease.Record{}, true, lease.ErrConfig},
		{"forbidden", []step{fail("HEAD blob", 403, "AuthorizationPermissionMismatch")}, lease.Record{}, false, lease.ErrConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := scriptedLock(t, newScript(t, tc.steps...))
			rec, ok, err := l.Read(ctxT(t, 5*time.Second))
			if tc.errIs != nil {
				if !errors.Is(err, tc.errIs) {
					t.Fatalf("Read: err %v, want %v", err, tc.errIs)
				}
				return
			}
			if err != nil || ok != tc.wantOK || rec.Holder != tc.want.Holder || rec.Term != tc.want.Term ||
				rec.AdvertiseURL != tc.want.AdvertiseURL || !rec.AcquiredAt.Equal(tc.want.AcquiredAt) {
				t.Fatalf("Read = %+v, %v, %v; want %+v, %v", rec, ok, err, tc.want, tc.wantOK)
			}
		})
	}
}

func TestAzBlobAcquire(t *testing.T) {
	self := lease.Record{Holder: "node-b", AdvertiseURL: "http://10.0.0.5:80"}
	var leaseID string
	checkMeta := func(term string) func(*http.Request) error {
		return func(r *http.Request) error {
			if got := hdr(r, "x-ms-lease-id"); got != leaseID {
				return fmt.Errorf("metadata write with lease id %q, want ours %q", got, leaseID)
			}
			if got := hdr(r, "If-Match"); got != `"0x8DC1"` {
				return fmt.Errorf("metadata write If-Match %q, want the ETag just read", got)
			}
			want := map[string]string{"term": term, "holder": "node-b", "advertise_url": "http://10.0.0.5:80"}
			for k, v := range want {
				if got := hdr(r, "x-ms-meta-"+k); got != v {
					return fmt.Errorf("x-ms-meta-%s = %q, want %q", k, got, v)
				}
			}
			if _, err := time.Parse(time.RFC3339Nano, hdr(r, "x-ms-meta-acquired_at")); err != nil {
				return fmt.Errorf("acquired_at: %v", err)
			}
			return nil
		}
	}
	checkAcquire := func(r *http.Request) error {
		if got := hdr(r, "x-ms-proposed-lease-id"); got != leaseID {
			return fmt.Errorf("proposed lease id %q, want ours %q", got, leaseID)
		}
		if got := hdr(r, "x-ms-lease-duration"); got != "15" {
			return fmt.Errorf("lease duration %q, want 15", got)
		}
		return nil
	}
	tests := []struct {
		name     string
		steps    []step
		wantTerm uint64 // when the acquisition succeeds
		errIs    error
		wantRec  string // holder in the returned record on lease.ErrHeld
	}{
		{"held: no acquire attempt", []step{props("leased", holderMeta)}, 0, lease.ErrHeld, "node-a"},
		{"breaking: held", []step{props("breaking", holderMeta)}, 0, lease.ErrHeld, "node-a"},
		{"held under our name: still ours", []step{
			props("leased", map[string]string{"term": "7", "holder": "node-b"}),
			{op: "PUT lease acquire", status: 201, check: checkAcquire},
			props("leased", map[string]string{"term": "7", "holder": "node-b"}),
			{op: "PUT metadata", status: 200, check: checkMeta("8")},
		}, 8, nil, ""},
		{"held under our name: another process", []step{
			props("leased", map[string]string{"term": "7", "holder": "node-b"}),
			fail("PUT lease acquire", 409, "LeaseAlreadyPresent"),
			props("leased", map[string]string{"term": "7", "holder": "node-b"}),
		}, 0, lease.ErrHeld, "node-b"},
		{"free", []step{
			props("available", map[string]string{"term": "7"}),
			{op: "PUT lease acquire", status: 201, check: checkAcquire},
			props("leased", map[string]string{"Term": "7", "Holder": "node-a"}),
			{op: "PUT metadata", status: 200, check: checkMeta("8")},
		}, 8, nil, ""},
		{"expired", []step{
			props("expired", holderMeta),
			ok("PUT lease acquire", 201),
			props("leased", holderMeta),
			{op: "PUT metadata", status: 200, check: checkMeta("8")},
		}, 8, nil, ""},
		{"lost the race", []step{
			props("available", map[string]string{"term": "7"}),
			fail("PUT lease acquire", 409, "LeaseAlreadyPresent"),
			props("leased", map[string]string{"term": "8", "holder": "node-c"}),
		}, 0, lease.ErrHeld, "node-c"},
		{"creates container and blob", []step{
			fail("HEAD blob", 404, "ContainerNotFound"),
			ok("PUT container", 201),
			{op: "PUT blob", status: 201, check: func(r *http.Request) error {
				if hdr(r, "If-None-Match") != "*" {
					return errors.New("blob creation without If-None-Match: *")
				}
				return nil
			}},
			ok("PUT lease acquire", 201),
			props("leased", nil),
			{op: "PUT metadata", status: 200, check: checkMeta("1")},
		}, 1, nil, ""},
		{"creation races are fine", []step{
			fail("HEAD blob", 404, "BlobNotFound"),
			fail("PUT container", 409, "ContainerAlreadyExists"),
			fail("PUT blob", 412, "LeaseIdMissing"),
			fail("PUT lease acquire", 409, "LeaseAlreadyPresent"),
			props("leased", holderMeta),
		}, 0, lease.ErrHeld, "node-a"},
		{"cannot create container", []step{
			fail("HEAD blob", 404, "ContainerNotFound"),
			fail("PUT container", 403, "AuthorizationPermissionMismatch"),
		}, 0, lease.ErrConfig, ""},
		// A failed record is not followed by a release (the strict script
		// fails on any further call): the lease expires on its own.
		{"metadata write fails: not released", []step{
			props("available", nil),
			ok("PUT lease acquire", 201),
			props("leased", map[string]string{"term": "2"}),
			fail("PUT metadata", 412, "ConditionNotMet"),
		}, 0, nil, ""},
		{"bad stored term: not released", []step{
			props("available", nil),
			ok("PUT lease acquire", 201),
			props("leased", map[string]string{"term": "-1"}),
		}, 0, lease.ErrConfig, ""},
		{"forbidden", []step{fail("HEAD blob", 403, "AuthorizationPermissionMismatch")}, 0, lease.ErrConfig, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := scriptedLock(t, newScript(t, tc.steps...))
			leaseID = l.LeaseID()
			rec, err := l.Acquire(ctxT(t, 5*time.Second), self, 15*time.Second)
			switch {
			case tc.wantTerm != 0:
				if err != nil || rec.Term != tc.wantTerm || rec.Holder != self.Holder || rec.AdvertiseURL != self.AdvertiseURL || rec.AcquiredAt.IsZero() {
					t.Fatalf("Acquire = %+v, %v; want term %d", rec, err, tc.wantTerm)
				}
			case tc.errIs != nil:
				if !errors.Is(err, tc.errIs) {
					t.Fatalf("Acquire: %v, want %v", err, tc.errIs)
				}
				if rec.Holder != tc.wantRec {
					t.Errorf("record on error = %+v, want holder %q", rec, tc.wantRec)
				}
			default:
				if err == nil || errors.Is(err, lease.ErrHeld) {
					t.Fatalf("Acquire: %v, want a failure", err)
				}
			}
		})
	}
}

func TestAzBlobLeaseDurationChecked(t *testing.T) {
	l := scriptedLock(t, newScript(t)) // no request may be made
	for _, d := range []time.Duration{0, 14 * time.Second, 61 * time.Second, 15500 * time.Millisecond} {
		if _, err := l.Acquire(context.Background(), lease.Record{Holder: "x"}, d); !errors.Is(err, lease.ErrConfig) {
			t.Errorf("Acquire(%v): %v, want lease.ErrConfig", d, err)
		}
		if err := l.Renew(context.Background(), d); !errors.Is(err, lease.ErrConfig) {
			t.Errorf("Renew(%v): %v, want lease.ErrConfig", d, err)
		}
	}
}

func TestAzBlobCallDeadline(t *testing.T) {
	// A storage that never answers: each call returns at the caller's
	// deadline, with a deadline error, whatever the try timeout.
	for _, callTimeout := range []time.Duration{50 * time.Millisecond, 5 * time.Second} {
		t.Run(fmt.Sprint(callTimeout), func(t *testing.T) {
			hang := step{op: "PUT lease renew", block: true}
			s := newScript(t, hang, hang, hang)
			l := scriptedLock(t, s, func(o *Options) { o.CallTimeout = callTimeout })
			const deadline = 300 * time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			err := l.Renew(ctx, 15*time.Second)
			took := time.Since(start)
			if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, lease.ErrLost) || errors.Is(err, lease.ErrConfig) {
				t.Errorf("Renew against a hung storage: %v, want a deadline error", err)
			}
			if took > deadline+100*time.Millisecond {
				t.Errorf("Renew took %v, deadline %v", took, deadline)
			}
			// With a 5 s try timeout only one try fits; use what was made.
			s.mu.Lock()
			s.steps = s.steps[:s.n]
			s.mu.Unlock()
		})
	}
}

func TestAzBlobNoSecretsInErrors(t *testing.T) {
	const sig = "c2VjcmV0LXNpZ25hdHVyZQ"
	sas := "sv=2024-11-04&ss=b&srt=co&sp=rwdlac&se=2030-01-01T00:00:00Z&sig=" + sig + "%3D"
	s := newScript(t,
		step{op: "PUT lease renew", err: errors.New("dial tcp: connection refused")},
		step{op: "PUT lease renew", err: errors.New("dial tcp: connection refused")},
		step{op: "PUT lease renew", err: errors.New("dial tcp: connection refused")},
	)
	l := scriptedLock(t, s, func(o *Options) { o.Auth, o.AccountKey, o.SASToken = azure.AuthSAS, "", "?"+sas })
	err := l.Renew(ctxT(t, 5*time.Second), 15*time.Second)
	if err == nil || strings.Contains(err.Error(), sig) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("transport error with a SAS URL: %v; want the cause without the signature", err)
	}

	for _, o := range []Options{
		{Options: azure.Options{Auth: azure.AuthConnectionString, ConnectionString: "AccountName=a;AccountKey=" + sig + ";Bogus"}},
		{Options: azure.Options{Auth: azure.AuthSharedKey, AccountURL: "https://a.blob.core.windows.net", AccountKey: "not base64 " + sig}},
		{Options: azure.Options{Auth: azure.AuthSAS, AccountURL: "https://a.blob.core.windows.net", SASToken: "%zz" + sig}},
	} {
		_, err := New(o, zap.NewNop())
		if !errors.Is(err, lease.ErrConfig) || strings.Contains(err.Error(), sig) {
			t.Errorf("New(%s): %v; want lease.ErrConfig without the secret", o.Auth, err)
		}
	}
}

func TestNewAzBlobLockOptions(t *testing.T) {
	valid := Options{Options: azure.Options{AccountURL: "https://acct.blob.core.windows.net", Auth: azure.AuthSharedKey, AccountKey: "a2V5"}}
	tests := []struct {
		name string
		mod  func(*Options)
		want string // "" means valid
	}{
		{"valid", func(*Options) {}, ""},
		{"bad container", func(o *Options) { o.Container = "Baton_1" }, "container name"},
		{"no url", func(o *Options) { o.AccountURL = "" }, "account_url is empty"},
		{"not a url", func(o *Options) { o.AccountURL = "acct.blob.core.windows.net" }, "not an http(s) URL"},
		{"query in url", func(o *Options) { o.AccountURL += "/?sig=x" }, "must not carry a query"},
		{"unknown auth", func(o *Options) { o.Auth = "password" }, "auth \"password\" is not one of"},
		{"mi over http", func(o *Options) { o.Auth, o.AccountURL = azure.AuthManagedIdentity, "http://acct.example" }, "needs an https account_url"},
		{"client id without mi", func(o *Options) { o.ClientID = "11111111-1111-1111-1111-111111111111" }, "client_id is only used"},
		{"mi with client id", func(o *Options) {
			o.Auth, o.ClientID = azure.AuthManagedIdentity, "11111111-1111-1111-1111-111111111111"
		}, ""},
		{"default", func(o *Options) { o.Auth = azure.AuthDefault }, ""},
		{"no key", func(o *Options) { o.AccountKey = "" }, "needs an account key"},
		{"no name in url", func(o *Options) { o.AccountURL = "http://127.0.0.1:10000" }, "cannot tell the account name"},
		{"no connection string", func(o *Options) { o.Auth = azure.AuthConnectionString }, "needs a connection string"},
		{"no sas", func(o *Options) { o.Auth = azure.AuthSAS }, "needs a SAS token"},
		{"negative timeout", func(o *Options) { o.CallTimeout = -time.Second }, "negative"},
		{"lease id not a guid", func(o *Options) { o.LeaseID = "node-a" }, "is not a GUID"},
		{"lease id a guid", func(o *Options) { o.LeaseID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301" }, ""},
		{"blob name too long", func(o *Options) { o.Blob = strings.Repeat("b", 1025) }, "blob name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := valid
			tc.mod(&o)
			_, err := New(o, zap.NewNop())
			if tc.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if !errors.Is(err, lease.ErrConfig) || !strings.Contains(fmt.Sprint(err), tc.want) {
				t.Fatalf("New: %v, want lease.ErrConfig containing %q", err, tc.want)
			}
		})
	}
	if _, err := New(valid, nil); err == nil {
		t.Error("New with a nil logger: want an error")
	}
}

func TestMetaEncoding(t *testing.T) {
	for _, s := range []string{"", "node-a", "http://10.0.0.4:80/x?y=1", "né x%", "tab\there", " lead"} {
		enc := metaEncode(s)
		for i := 0; i < len(enc); i++ {
			if enc[i] <= ' ' || enc[i] > '~' {
				t.Errorf("metaEncode(%q) = %q: byte %q is not header-safe", s, enc, enc[i])
			}
		}
		if got := metaDecode(enc); got != s {
			t.Errorf("metaDecode(metaEncode(%q)) = %q", s, got)
		}
	}
	if got := metaEncode("http://10.0.0.4:80"); got != "http://10.0.0.4:80" {
		t.Errorf("plain URL encoded as %q, want unchanged", got)
	}
}

// TestAzBlobAdoptNeverReleasesOnFailure: a failed Adopt returns the error
// and sends no release under the node's durable lease ID (only the
// Elector gives a lease away, after retiring the ID).
func TestAzBlobAdoptNeverReleasesOnFailure(t *testing.T) {
	const from = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
	var own string
	checkChange := func(r *http.Request) error {
		if hdr(r, "x-ms-lease-id") != from || hdr(r, "x-ms-proposed-lease-id") != own {
			return fmt.Errorf("change from %q to %q, want from %q to ours %q", hdr(r, "x-ms-lease-id"), hdr(r, "x-ms-proposed-lease-id"), from, own)
		}
		return nil
	}
	// The second acquire is under our own ID, for our own duration.
	acquireOurs := func(r *http.Request) error {
		if got := hdr(r, "x-ms-proposed-lease-id"); got != own {
			return fmt.Errorf("acquire with lease id %q, want ours %q", got, own)
		}
		if got := hdr(r, "x-ms-lease-duration"); got != "15" {
			return fmt.Errorf("acquire for %qs, want 15", got)
		}
		return nil
	}
	tests := []struct {
		name  string
		steps []step
		errIs error // nil: a plain error
	}{
		{"from holds nothing", []step{fail("PUT lease change", 409, "LeaseIdMismatchWithLeaseOperation")}, lease.ErrLost},
		{"acquire fails after the change: not released", []step{
			{op: "PUT lease change", status: 200, check: checkChange},
			fail("PUT lease acquire", 409, "LeaseAlreadyPresent"),
		}, lease.ErrLost},
		{"record fails after the change: not released", []step{
			{op: "PUT lease change", status: 200, check: checkChange},
			{op: "PUT lease acquire", status: 201, check: acquireOurs},
			props("leased", map[string]string{"term": "4"}),
			fail("PUT metadata", 412, "ConditionNotMet"),
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := scriptedLock(t, newScript(t, tc.steps...))
			own = l.LeaseID()
			rec, err := l.Adopt(ctxT(t, 5*time.Second), from, lease.Record{Holder: "node-b"}, 15*time.Second)
			if err == nil || rec != (lease.Record{}) || (tc.errIs != nil && !errors.Is(err, tc.errIs)) {
				t.Fatalf("Adopt = %+v, %v; want a failure wrapping %v", rec, err, tc.errIs)
			}
		})
	}
}
