package proxy

import (
	"io"
	"net"
	"net/http"
	"net/netip"

	"go.uber.org/zap"
)

// ProbeState reports whether the load balancer should send new flows to this
// node (up) and the role to name in the answer.
type ProbeState func() (up bool, role string)

// Probe answers the load balancer's health probe: exactly 200 when up, 503
// otherwise, on GET and HEAD of one path. Azure's HTTP probes carry no host
// name, so the Host header is ignored.
type Probe struct {
	path  string
	allow []netip.Prefix
	state ProbeState
	log   *zap.Logger
}

// NewProbe builds the probe handler. allow, when not empty, restricts the
// sources that may probe (Azure probes come from 168.63.129.16).
func NewProbe(path string, allow []netip.Prefix, state ProbeState, log *zap.Logger) *Probe {
	return &Probe{path: path, allow: allow, state: state, log: log.Named("probe")}
}

func (p *Probe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != p.path {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if len(p.allow) > 0 && !p.allowed(r.RemoteAddr) {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	up, role := p.state()
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	if up {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	if r.Method == http.MethodGet {
		io.WriteString(w, role+"\n")
	}
}

func (p *Probe) allowed(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap().WithZone("")
	for _, pr := range p.allow {
		if pr.Contains(ip) {
			return true
		}
	}
	return false
}
