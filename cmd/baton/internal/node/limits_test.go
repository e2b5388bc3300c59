package node

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/batonproxy/baton/config"
)

// TestEffectiveLimits: the configured limits are kept when the open-files
// limit holds them; otherwise both are lowered (logged) so that every main
// listener at its cap plus the backend at its cap fit beside the reserve.
func TestEffectiveLimits(t *testing.T) {
	l := config.Limits{MaxConns: 10000, MaxBackendConns: 1024}
	for _, tc := range []struct {
		name           string
		mains          int
		nofile         uint64
		conns, backend int
		warned         bool
	}{
		{"fits", 2, 65536, 10000, 1024, false},
		{"unknown limit", 2, 0, 10000, 1024, false},
		{"4096, two listeners", 2, 4096, 1440, 960, true},
		{"4096, one listener", 1, 4096, 2880, 960, true},
		{"tiny", 1, 100, 3, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.WarnLevel)
			c, b := effectiveLimits(l, tc.mains, tc.nofile, zap.New(core))
			if c != tc.conns || b != tc.backend {
				t.Errorf("max_conns %d, max_backend_conns %d; want %d and %d", c, b, tc.conns, tc.backend)
			}
			if tc.nofile > reservedFDs && c*tc.mains+b > int(tc.nofile)-reservedFDs {
				t.Errorf("%d×%d + %d descriptors do not fit in %d - %d", c, tc.mains, b, tc.nofile, reservedFDs)
			}
			if got := logs.Len() > 0; got != tc.warned {
				t.Errorf("warned %v, want %v", got, tc.warned)
			}
		})
	}
}
