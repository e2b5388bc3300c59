package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/batonproxy/baton/config"
	"github.com/batonproxy/baton/lease"
	"github.com/batonproxy/baton/lease/leasetest"
	"github.com/batonproxy/baton/proxy"
)

func TestMain(m *testing.M) {
	code := m.Run()
	// The tests' own keep-alive connections are not the node's goroutines.
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// fakeClock is a clock a test moves by hand; timers still run on real time,
// so jumping it shows what a request sees before the elector loop runs.
type fakeClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *fakeClock) jump(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// TestRequestPathFencing: a node whose renew deadline has passed by its own
// clock answers 503 and sends nothing to its backend, even though its
// elector loop has not run since (renewals hang, nothing demoted it yet).
func TestRequestPathFencing(t *testing.T) {
	var hits atomic.Int32
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprintf(w, "term=%s", r.Header.Get("Baton-Term"))
	}))
	defer backend.Close()

	store := leasetest.NewStore()
	lock := store.NewLock("a")
	clock := &fakeClock{}
	el, err := lease.NewElector(lock, lease.Config{
		NodeName: "a", Duration: 15 * time.Second, RenewInterval: 3 * time.Second,
		RenewDeadline: 10 * time.Second, RetryInterval: time.Second, Now: clock.Now,
	}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(backend.URL)
	p, err := proxy.New(proxy.Options{Backend: u, FencingHeader: "Baton-Term", Fence: el}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	front := httptest.NewServer(p)
	defer front.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	el.SetHealthy(true, "test")
	el.Start(ctx)
	defer el.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := el.Fence(); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("elector never became active")
		}
		time.Sleep(5 * time.Millisecond)
	}
	get := func() (int, string) {
		res, err := http.Get(front.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := get(); code != 200 || body != "term=1" {
		t.Fatalf("active node: %d %q", code, body)
	}

	// From now on every renew hangs, and the clock jumps past the renew
	// deadline in one step, as after a VM freeze. The elector's timers have
	// not fired: only the request path can notice.
	lock.Set(leasetest.Renew, leasetest.Hang())
	clock.jump(10*time.Second + time.Millisecond)
	before := hits.Load()
	if code, _ := get(); code != http.StatusServiceUnavailable {
		t.Fatalf("frozen node past its deadline answered %d, want 503", code)
	}
	if hits.Load() != before {
		t.Fatal("a request reached the backend after the renew deadline")
	}
	if st := el.State(); st.Role != lease.RoleActive {
		t.Logf("(the elector loop already demoted: %s)", st.Role)
	}
}

// TestAdminActionsNeedToken: without or with a wrong token nothing changes.
func TestAdminActionsNeedToken(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer backend.Close()
	cfg, err := config.LoadBytes([]byte(fmt.Sprintf(`
node_name = "a"
[listen]
http = "127.0.0.1:0"
[backend]
url = %q
[probe]
listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
token_file = %q
[drain]
advertise_url = "http://127.0.0.1:1"
exit_delay = "50ms"
[lease]
backend = "file"
[lease.file]
path = %q
`, backend.URL, tokenFile, filepath.Join(dir, "lease"))), "test.toml")
	if err != nil {
		t.Fatal(err)
	}
	keepRuntime(t)
	n, err := New(cfg, zap.NewNop(), "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	admin := "http://" + n.Addr("admin.listen")
	for _, c := range []struct {
		name, auth string
		want       int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"wrong token", "Bearer nope", http.StatusForbidden},
		{"not bearer", "Basic czNjcmV0", http.StatusUnauthorized},
	} {
		for _, path := range []string{"/step-down", "/maintenance?on=true"} {
			req, _ := http.NewRequest("POST", admin+path, nil)
			if c.auth != "" {
				req.Header.Set("Authorization", c.auth)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != c.want {
				t.Errorf("%s %s: %d, want %d", c.name, path, res.StatusCode, c.want)
			}
		}
	}
	if st := n.Status(); st.Maintenance {
		t.Fatal("maintenance turned on without a valid token")
	}
	req, _ := http.NewRequest("POST", admin+"/maintenance?on=true", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(b), "true") {
		t.Fatalf("with the token: %d %s", res.StatusCode, b)
	}
	if st := n.Status(); !st.Maintenance {
		t.Fatal("maintenance not on after an authorized request")
	}
}

// canceledCause is like os/signal's causes: it says it is context.Canceled.
type canceledCause string

func (c canceledCause) Error() string      { return string(c) }
func (canceledCause) Is(target error) bool { return target == context.Canceled }

func TestStopReason(t *testing.T) {
	for _, tc := range []struct {
		cause error // nil: a plain cancel
		want  string
	}{
		{nil, "signal"},
		{errors.New("service stop"), "service stop"},
		{canceledCause("terminated signal received"), "terminated signal received"},
	} {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(tc.cause)
		if got := stopReason(ctx); got != tc.want {
			t.Errorf("stopReason(cause %v) = %q, want %q", tc.cause, got, tc.want)
		}
	}
}
