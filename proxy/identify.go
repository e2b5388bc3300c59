package proxy

import (
	"strconv"
	"strings"
)

// The identify header (Options.IdentifyHeader, off by default) names the
// node and the term on every answer this node serves from its own backend,
// "node-a; term=7", so a client (`baton drill`, an operator with curl) can
// tell which node answered through the load balancer. It is set in one
// place, the exchange's WriteHeader (stats.go), after the backend's headers
// were copied: on the fast path and through httputil.ReverseProxy alike,
// also on the node's own 502/504 for a local request, and it replaces a
// header of that name the backend sent. 1xx answers do not carry it. A
// forwarded request carries the active node's header, set there.
//
// The value is built once per term (as the fencing header's is) and shared
// by the requests of that term, read-only: with the header off the request
// path does nothing more than test a nil pointer.

// identValue is the identify header's key and value for one term.
type identValue struct {
	term uint64
	key  string
	v    []string // len 1, cap 1: an append elsewhere copies it
}

// identHeader returns the identify header for term, built once per term.
func (p *Proxy) identHeader(term uint64) *identValue {
	if iv := p.identCache.Load(); iv != nil && iv.term == term {
		return iv
	}
	iv := &identValue{term: term, key: p.identKey, v: []string{IdentifyValue(p.opts.NodeName, term)}}
	p.identCache.Store(iv)
	return iv
}

// identifyTermSep separates the node name from the term in the identify
// header's value. A node name has no spaces (config), so it cannot hold it.
const identifyTermSep = "; term="

// IdentifyValue is the identify header's value for a node and a term:
// "node-a; term=7".
func IdentifyValue(node string, term uint64) string {
	return node + identifyTermSep + strconv.FormatUint(term, 10)
}

// ParseIdentify reads an identify header's value back; ok is false when v
// is not of the form IdentifyValue makes.
func ParseIdentify(v string) (node string, term uint64, ok bool) {
	node, t, found := strings.Cut(strings.TrimSpace(v), identifyTermSep)
	if !found || node == "" {
		return "", 0, false
	}
	term, err := strconv.ParseUint(t, 10, 64)
	if err != nil {
		return "", 0, false
	}
	return node, term, true
}
