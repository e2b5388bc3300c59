package proxy

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"
)

var testSecret = []byte("a shared peer secret")

// markNode is one proxy with a backend that echoes what it received of the
// forwarding headers, its front served over TLS when tlsFront.
type markNode struct {
	p     *Proxy
	fence *fakeFence
	lead  *fakeLeader
	front *httptest.Server
}

func newMarkNode(t *testing.T, name string, secret []byte, tlsFront bool) *markNode {
	t.Helper()
	n := &markNode{fence: &fakeFence{}, lead: newFakeLeader()}
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Instance", name)
		io.WriteString(w, r.Header.Get("X-Forwarded-For")+"|"+r.Header.Get("X-Forwarded-Proto")+"|"+
			r.Header.Get("X-Forwarded-Host")+"|"+r.Header.Get(ForwardedHeader))
	}))
	t.Cleanup(be.Close)
	u, _ := url.Parse(be.URL)
	p, err := New(Options{Backend: u, Fence: n.fence, Standby: StandbyForward, Hold: time.Second,
		Leader: n.lead, NodeName: name, ForwardSecret: secret}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	n.p = p
	if tlsFront {
		n.front = httptest.NewTLSServer(p)
	} else {
		n.front = httptest.NewServer(p)
	}
	t.Cleanup(n.front.Close)
	return n
}

// clientFrom is an HTTP client whose connections come from the loopback
// address ip, so the nodes can tell the client from each other.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext:     func(ctx context.Context, n, a string) (net.Conn, error) { return d.DialContext(ctx, n, a) },
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
}

func getWith(t *testing.T, c *http.Client, u string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Host = "app.example.com"
	for k, vv := range hdr {
		req.Header[k] = vv
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// TestForwardedRequestCarriesTheClientAsTheStandbySawIt: with the peer
// secret on both nodes, the app behind the active sees the client's
// address and scheme as the standby saw them (HTTPS there, plain HTTP
// between the nodes), not the client's own X-Forwarded-*, not the
// standby's address, and no marker. Without a secret, or with another
// one, the marker vouches for nothing: the app sees the standby's address
// and the hop's scheme.
func TestForwardedRequestCarriesTheClientAsTheStandbySawIt(t *testing.T) {
	forged := http.Header{"X-Forwarded-For": {"6.6.6.6"}, "X-Forwarded-Proto": {"gopher"}, "X-Forwarded-Host": {"evil.example"}}
	for _, tc := range []struct {
		name             string
		secretA, secretB []byte
		want             string
	}{
		{"same secret", testSecret, testSecret, "127.0.0.2|https|app.example.com|"},
		{"no secret", nil, nil, "127.0.0.1|http|app.example.com|"},
		{"other secret", testSecret, []byte("another secret"), "127.0.0.1|http|app.example.com|"},
		{"only the active has one", nil, testSecret, "127.0.0.1|http|app.example.com|"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newMarkNode(t, "a", tc.secretA, true)
			b := newMarkNode(t, "b", tc.secretB, false)
			b.fence.ok.Store(true)
			a.lead.set(b.front.URL)
			res, body := getWith(t, clientFrom("127.0.0.2"), a.front.URL+"/x", forged)
			if res.StatusCode != 200 || res.Header.Get("X-Instance") != "b" {
				t.Fatalf("forwarded request: %d from %q", res.StatusCode, res.Header.Get("X-Instance"))
			}
			if body != tc.want {
				t.Errorf("app behind the active saw %q, want %q", body, tc.want)
			}
		})
	}
}

// TestClientCannotForgeTheMarker: a client that sends a marker straight to
// the active (made up, copied from another request, or stale) gets its
// X-Forwarded-* replaced by what the active sees, on both ways to the
// backend; sent to a standby, a marker only gets the client a 503.
func TestClientCannotForgeTheMarker(t *testing.T) {
	now := time.Now()
	valid := func(xff string, at time.Time) string {
		return signForward(testSecret, "a", at, xff, "https", "app.example.com")
	}
	for _, tc := range []struct {
		name   string
		marker string
		xff    string
	}{
		{"made up", "a", "6.6.6.6"},
		{"made up, marker form", "a;" + strconv.FormatInt(now.Unix(), 10) + ";AAAA", "6.6.6.6"},
		{"copied, for other values", valid("203.0.113.7", now), "6.6.6.6"},
		{"stale", valid("6.6.6.6", now.Add(-2*markerSkew)), "6.6.6.6"},
		{"from the future", valid("6.6.6.6", now.Add(2*markerSkew)), "6.6.6.6"},
	} {
		for _, fast := range []bool{true, false} {
			t.Run(tc.name+map[bool]string{true: " fast path", false: " standard path"}[fast], func(t *testing.T) {
				b := newMarkNode(t, "b", testSecret, false)
				if !fast {
					b.p.fast = nil
				}
				b.fence.ok.Store(true)
				hdr := http.Header{ForwardedHeader: {tc.marker}, "X-Forwarded-For": {tc.xff},
					"X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"app.example.com"}}
				_, body := getWith(t, clientFrom("127.0.0.3"), b.front.URL+"/", hdr)
				if want := "127.0.0.3|http|app.example.com|"; body != want {
					t.Errorf("app saw %q, want %q", body, want)
				}
			})
		}
	}
	// A valid marker (say, echoed by a debug page of the app) vouches only
	// for the values it was made for: replayed with them it changes
	// nothing, with others it is dropped (above).
	b := newMarkNode(t, "b", testSecret, false)
	b.fence.ok.Store(true)
	_, body := getWith(t, clientFrom("127.0.0.3"), b.front.URL+"/", http.Header{ForwardedHeader: {valid("127.0.0.3", now)},
		"X-Forwarded-For": {"127.0.0.3"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"app.example.com"}})
	if want := "127.0.0.3|https|app.example.com|"; body != want {
		t.Errorf("replayed marker: app saw %q, want %q", body, want)
	}

	// To a standby: not forwarded, 503.
	a := newMarkNode(t, "a", testSecret, false)
	a.lead.set(b.front.URL)
	res, _ := getWith(t, clientFrom("127.0.0.3"), a.front.URL+"/", http.Header{ForwardedHeader: {"z"}})
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("marked request to a standby: %d, want 503", res.StatusCode)
	}
}

func TestVouched(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	req := func(marker string, h http.Header) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		for k, vv := range h {
			r.Header[k] = vv
		}
		r.Header.Set(ForwardedHeader, marker)
		return r
	}
	base := http.Header{"X-Forwarded-For": {"10.1.2.3"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"h"}}
	good := signForward(testSecret, "a", now, "10.1.2.3", "https", "h")
	if !vouched(testSecret, req(good, base), now) {
		t.Fatal("a valid marker did not verify")
	}
	if !vouched(testSecret, req(good, base), now.Add(markerSkew)) || vouched(testSecret, req(good, base), now.Add(markerSkew+time.Second)) {
		t.Error("skew bound not at markerSkew")
	}
	if vouched(nil, req(good, base), now) {
		t.Error("verified without a secret")
	}
	twice := base.Clone()
	twice["X-Forwarded-For"] = []string{"10.1.2.3", "6.6.6.6"}
	if vouched(testSecret, req(good, twice), now) {
		t.Error("a second X-Forwarded-For line rode on a valid marker")
	}
	for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"} {
		h := base.Clone()
		h.Set(k, h.Get(k)+"x")
		if vouched(testSecret, req(good, h), now) {
			t.Errorf("changed %s verified", k)
		}
	}
	for _, m := range []string{"", "a", "a;b", "a;x;y", good + "x", "b" + good[1:]} {
		if vouched(testSecret, req(m, base), now) {
			t.Errorf("marker %q verified", m)
		}
	}
	if got := signForward(nil, "a", now, "", "", ""); got != "a" {
		t.Errorf("marker without a secret = %q, want the node name", got)
	}
}
