package config

import (
	"crypto/tls"
	"fmt"
	"testing"
)

func TestHelpers(t *testing.T) {
	eq(t, Check{}.IsRequired(), true)
	eq(t, Check{Required: ptr(false)}.IsRequired(), false)
	eq(t, Check{Required: ptr(true)}.IsRequired(), true)

	p := Probe{Allow: []string{"168.63.129.16/32", "10.0.0.0/8", "fe80::1", "bad"}}
	eq(t, fmt.Sprint(p.AllowPrefixes()), "[168.63.129.16/32 10.0.0.0/8 fe80::1/128]")
	eq(t, len(Probe{}.AllowPrefixes()), 0)

	eq(t, TLS{MinVersion: "1.2"}.MinVersionID(), uint16(tls.VersionTLS12))
	eq(t, TLS{MinVersion: "1.3"}.MinVersionID(), uint16(tls.VersionTLS13))
	eq(t, TLS{}.Redirect(), false)
	eq(t, TLS{RedirectHTTP: ptr(true)}.Redirect(), true)
}
