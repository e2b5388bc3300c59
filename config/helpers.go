package config

import (
	"crypto/tls"
	"net/netip"
)

// IsRequired reports whether the check gates candidacy (the default).
func (c Check) IsRequired() bool { return c.Required == nil || *c.Required }

// AllowPrefixes returns probe.allow as prefixes. Load has validated and
// normalised the entries, so unparsable ones (possible only in a Config
// built by hand) are skipped.
func (p Probe) AllowPrefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(p.Allow))
	for _, a := range p.Allow {
		if pre, err := parseAllow(a); err == nil {
			out = append(out, pre)
		}
	}
	return out
}

// MinVersionID returns tls.min_version as a crypto/tls version constant
// (TLS 1.2 unless "1.3").
func (t TLS) MinVersionID() uint16 {
	if t.MinVersion == "1.3" {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

// Redirect reports whether HTTP requests are redirected to HTTPS.
func (t TLS) Redirect() bool { return t.RedirectHTTP != nil && *t.RedirectHTTP }
