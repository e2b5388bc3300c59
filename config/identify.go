package config

import (
	"net/textproto"
	"slices"
)

// identifyReserved are headers backend.identify_header must not name: the
// framing, connection and caching headers of an answer, and the ones a
// client or a cache acts on.
var identifyReserved = []string{
	"Cache-Control", "Connection", "Content-Encoding", "Content-Length", "Content-Type", "Date",
	"Keep-Alive", "Location", "Proxy-Authenticate", "Proxy-Connection", "Retry-After", "Set-Cookie",
	"Strict-Transport-Security", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Vary", "Www-Authenticate",
}

// identifyHeader checks backend.identify_header: "" (off), or a header
// name of its own.
func (st *state) identifyHeader(b Backend) {
	h := b.IdentifyHeader
	if h == "" {
		return
	}
	switch k := textproto.CanonicalMIMEHeaderKey(h); {
	case !isToken(h):
		st.errorf("backend.identify_header", "%q is not a valid HTTP header name", h)
	case slices.Contains(identifyReserved, k):
		st.errorf("backend.identify_header", "%q is a standard header of the answer; choose a name of its own such as \"Baton-Node\"", h)
	case b.FencingHeader != "" && k == textproto.CanonicalMIMEHeaderKey(b.FencingHeader):
		st.errorf("backend.identify_header", "%q is backend.fencing_header too; choose another name such as \"Baton-Node\"", h)
	}
}
