package proxy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The forwarding marker (ForwardedHeader) says two things. Present at all,
// it says "another node already forwarded this": a node that may not serve
// it answers 503 instead of forwarding it again, whoever set it (a client
// that sets it only gets that 503). Authenticated, it also says "baton
// vouches for these X-Forwarded-For, -Proto and -Host": the node that
// serves the request passes them to the app as the forwarding node saw the
// client, so the app sees the same values whichever node the client
// reached. Authenticated means an HMAC-SHA256 with the peer link's secret
// over the forwarding node's name, a time stamp and those three values:
//
//	Baton-Forwarded-By: <node>;<unix seconds>;<base64url MAC>
//
// A marker that does not verify (no secret configured on the serving node,
// another secret, a stale time stamp, values changed on the way) vouches
// for nothing: the serving node drops the three headers and sets them from
// its own connection, as for any client. Replaying a marker gains nothing,
// as it only vouches for the values it was made for. Without a secret
// (no [peer] section) forwarded requests reach the app with the forwarding
// node's address and the scheme of the hop between the nodes.

// markerSkew is how far a marker's time stamp may be from the serving
// node's clock.
const markerSkew = 60 * time.Second

// forwardMAC is the marker's MAC over the values it vouches for.
func forwardMAC(secret []byte, node, ts, xff, xfp, xfh string) string {
	m := hmac.New(sha256.New, secret)
	for _, s := range [...]string{"baton-forward/1", node, ts, xff, xfp, xfh} {
		m.Write([]byte(s))
		m.Write([]byte{'\n'})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// signForward returns the marker for a request forwarded with these
// values, or just the node name when there is no secret.
func signForward(secret []byte, node string, now time.Time, xff, xfp, xfh string) string {
	if len(secret) == 0 {
		return node
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	return node + ";" + ts + ";" + forwardMAC(secret, node, ts, xff, xfp, xfh)
}

// vouched reports whether r's marker verifies with secret: the request
// comes from a baton node that saw the client as its X-Forwarded-* say.
func vouched(secret []byte, r *http.Request, now time.Time) bool {
	if len(secret) == 0 {
		return false
	}
	vv := r.Header[ForwardedHeader]
	if len(vv) != 1 {
		return false
	}
	node, rest, ok := strings.Cut(vv[0], ";")
	if !ok {
		return false
	}
	ts, mac, ok := strings.Cut(rest, ";")
	if !ok {
		return false
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	if d := now.Sub(time.Unix(t, 0)); d > markerSkew || d < -markerSkew {
		return false
	}
	h := r.Header
	if len(h["X-Forwarded-For"]) > 1 || len(h["X-Forwarded-Proto"]) > 1 || len(h["X-Forwarded-Host"]) > 1 {
		return false
	}
	want := forwardMAC(secret, node, ts, h.Get("X-Forwarded-For"), h.Get("X-Forwarded-Proto"), h.Get("X-Forwarded-Host"))
	return hmac.Equal([]byte(mac), []byte(want))
}

// screenForwarded handles the marker of an inbound request once, before
// the decision: it reports whether the request was marked (it must not be
// forwarded again), and leaves the marker on the request only when it
// verifies, with the X-Forwarded-* it vouches for. An unverified marker is
// removed together with those headers, so nothing downstream trusts them.
func screenForwarded(secret []byte, r *http.Request) (marked bool) {
	if _, ok := r.Header[ForwardedHeader]; !ok {
		return false
	}
	if !vouched(secret, r, time.Now()) {
		h := r.Header
		delete(h, ForwardedHeader)
		delete(h, "X-Forwarded-For")
		delete(h, "X-Forwarded-Proto")
		delete(h, "X-Forwarded-Host")
	}
	return true
}
