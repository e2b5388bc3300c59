package peer

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// AuthHeader carries a message's MAC: "v1 t=<unix ms> n=<nonce> mac=<hex>".
const AuthHeader = "Baton-Peer-Auth"

// MaxSkew is how far a request's time stamp may be from the receiver's
// wall clock.
const MaxSkew = time.Minute

var (
	errNoAuth   = errors.New("peer: missing or malformed " + AuthHeader)
	errBadMAC   = errors.New("peer: wrong MAC (different secret?)")
	errSkew     = errors.New("peer: time stamp outside the allowed clock skew")
	errReplayed = errors.New("peer: request replayed")
)

// signer computes and checks MACs with the shared secret.
type signer struct{ key []byte }

// mac returns the MAC of one message. bind is the request's MAC for an
// answer, "" for a request; nonce makes every message's MAC unique.
func (s signer) mac(method, path string, ts int64, nonce string, body []byte, bind string) string {
	m := hmac.New(sha256.New, s.key)
	sum := sha256.Sum256(body)
	fmt.Fprintf(m, "baton-peer-v1\n%s\n%s\n%d\n%s\n%x\n%s", method, path, ts, nonce, sum, bind)
	return hex.EncodeToString(m.Sum(nil))
}

// header signs one message: "v1 t=<unix ms> n=<nonce> mac=<hex>".
func (s signer) header(method, path string, ts int64, body []byte, bind string) (value, mac string) {
	nonce := rand.Text()
	mac = s.mac(method, path, ts, nonce, body, bind)
	return "v1 t=" + strconv.FormatInt(ts, 10) + " n=" + nonce + " mac=" + mac, mac
}

func parseHeader(v string) (ts int64, nonce, mac string, err error) {
	f := strings.Fields(v)
	if len(f) != 4 || f[0] != "v1" || !strings.HasPrefix(f[1], "t=") || !strings.HasPrefix(f[2], "n=") || !strings.HasPrefix(f[3], "mac=") {
		return 0, "", "", errNoAuth
	}
	ts, err = strconv.ParseInt(f[1][2:], 10, 64)
	if err != nil {
		return 0, "", "", errNoAuth
	}
	return ts, f[2][2:], f[3][4:], nil
}

// verify checks a message's header against its content.
func (s signer) verify(header, method, path string, body []byte, bind string) (ts int64, mac string, err error) {
	ts, nonce, mac, err := parseHeader(header)
	if err != nil {
		return 0, "", err
	}
	want := s.mac(method, path, ts, nonce, body, bind)
	if !hmac.Equal([]byte(mac), []byte(want)) {
		return 0, "", errBadMAC
	}
	return ts, mac, nil
}

// replayCache remembers the MACs of accepted requests for 2×MaxSkew.
type replayCache struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// fresh checks the time stamp against now and records mac; it fails for a
// stale time stamp or a MAC seen before.
func (c *replayCache) fresh(mac string, ts int64, now time.Time) error {
	at := time.UnixMilli(ts)
	if d := now.Sub(at); d > MaxSkew || d < -MaxSkew {
		return fmt.Errorf("%w: %s apart", errSkew, d.Round(time.Millisecond))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[string]time.Time{}
	}
	if _, ok := c.seen[mac]; ok {
		return errReplayed
	}
	if len(c.seen) > 4096 {
		for k, t := range c.seen {
			if now.Sub(t) > 2*MaxSkew {
				delete(c.seen, k)
			}
		}
	}
	c.seen[mac] = now
	return nil
}

// DeriveKey returns a key for another use of the shared secret (purpose
// names it), so that no MAC made for one use is valid for another: the
// proxy's forwarding marker uses DeriveKey(secret, "forwarding marker").
func DeriveKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("baton-derive-v1\n" + purpose))
	return m.Sum(nil)
}
