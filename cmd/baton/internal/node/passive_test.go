package node

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/batonproxy/baton/config"
)

// TestPassivePathRule: a [[health.passive.path]] rule sees the requests the
// proxy serves under its prefix (through liveObserver), trips on their
// errors only, and makes the node unhealthy with a reason that names the
// prefix, in /status, the log (once) and baton_backend_healthy.
func TestPassivePathRule(t *testing.T) {
	keepRuntime(t)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/checkout/") || r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer be.Close()
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("tok\n"), 0o600)
	path := filepath.Join(dir, "a.toml")
	body := nodeTOML("a", be.URL, filepath.Join(dir, "lease"), token, healthTOML(be.URL+"/healthz", "100ms")+`
[[health.passive.path]]
prefix = "/checkout/"
error_rate = 0.5
window = "5s"
min_requests = 10
cooldown = "1s"
`)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	n, err := New(cfg, zap.New(core), "test")
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
	waitFor(t, "active", 5*time.Second, func() bool { return n.Status().Role == "active" })

	get := func(p string) int {
		res, err := http.Get("http://" + n.Addr("listen.http") + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	// Errors elsewhere (and under a look-alike path) do not trip the rule.
	for range 10 {
		get("/fail")
		get("/checkout")
	}
	time.Sleep(1500 * time.Millisecond) // several passive ticks
	if st := n.Status(); !st.Health.Healthy || st.Role != "active" {
		t.Fatalf("errors outside the prefix changed the node: %s, %+v", st.Role, st.Health)
	}
	for range 10 {
		if code := get("/checkout/pay"); code != http.StatusInternalServerError {
			t.Fatalf("status %d, want the backend's 500", code)
		}
	}
	want := `passive: path "/checkout/": error rate 1.00 >= 0.50 over 5s (10/10 requests)`
	waitFor(t, "unhealthy", 5*time.Second, func() bool { return !n.Status().Health.Healthy })
	st := n.Status()
	if st.Health.Reason != want || len(st.Health.Passive.Paths) != 1 || st.Health.Passive.Paths[0].Errors != 10 {
		t.Fatalf("health %+v, want reason %q", st.Health, want)
	}
	if v := gauge(scrape(t, n), "baton_backend_healthy", "", ""); v != 0 {
		t.Errorf("baton_backend_healthy %v, want 0", v)
	}
	waitFor(t, "healthy after the cooldown", 5*time.Second, func() bool { return n.Status().Health.Healthy })
	unhealthy := logs.FilterMessage("backend unhealthy").All()
	if len(unhealthy) != 1 || unhealthy[0].ContextMap()["reason"] != want {
		t.Fatalf("unhealthy log lines %v, want one naming the prefix", unhealthy)
	}
}
