package config

import (
	"fmt"
	"strings"
	"time"
)

// String formats the duration the way the configuration file writes it:
// "15s", "1m", "1m30s", "250ms".
func (d Duration) String() string {
	s := time.Duration(d).String()
	// time.Duration prints 60s as "1m0s" and 1h as "1h0m0s"; drop the zero
	// tails so the effective configuration reads like a hand-written one.
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// MarshalText encodes the duration as a string like "15s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText decodes a Go duration string ("15s", "1m30s", "250ms").
// Bare numbers are rejected: a unit is required.
func (d *Duration) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: write it as a string with a unit, like \"15s\" or \"500ms\"", s)
	}
	*d = Duration(v)
	return nil
}
