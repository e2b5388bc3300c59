package config

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// Limits of [runtime].
const (
	minGCPercent   = 10
	maxGCPercent   = 10000
	minMemoryLimit = 16 << 20 // below this the GC would run almost constantly
)

// String returns "default", "config" or "env".
func (o Origin) String() string {
	switch o {
	case OriginDefault:
		return "default"
	case OriginConfig:
		return "config"
	case OriginEnv:
		return "env"
	}
	return "origin(" + strconv.Itoa(int(o)) + ")"
}

// runtimeDefaults resolves where each [runtime] value comes from: the file
// if it writes the key, else the environment variable if set (the value is
// then left to the Go runtime), else baton's default. memory_limit = ""
// counts as not written, like other string keys.
func (st *state) runtimeDefaults(c *Config) {
	r := &c.Runtime
	switch {
	case st.has("runtime", "gc_percent"):
		r.GCPercentFrom = OriginConfig
	case st.getenv("GOGC") != "":
		r.GCPercent, r.GCPercentFrom = 0, OriginEnv
	default:
		r.GCPercent, r.GCPercentFrom = DefaultGCPercent, OriginDefault
	}
	switch {
	case st.has("runtime", "memory_limit") && r.MemoryLimit != "":
		r.MemoryLimitFrom = OriginConfig
	case st.getenv("GOMEMLIMIT") != "":
		r.MemoryLimitFrom = OriginEnv
	default:
		r.MemoryLimit, r.MemoryLimitFrom = DefaultMemoryLimit, OriginDefault
	}
}

func (st *state) validateRuntime(c *Config) {
	r := &c.Runtime
	if r.GCPercentFrom != OriginEnv && r.GCPercent != -1 && (r.GCPercent < minGCPercent || r.GCPercent > maxGCPercent) {
		st.errorf("runtime.gc_percent", "%d is outside the allowed range %d..%d (or -1: the proportional GC off, with a memory_limit)",
			r.GCPercent, minGCPercent, maxGCPercent)
	}
	noLimit := false
	switch r.MemoryLimitFrom {
	case OriginEnv:
		noLimit = strings.TrimSpace(st.getenv("GOMEMLIMIT")) == "off"
	default:
		n, err := parseSize(r.MemoryLimit)
		switch {
		case err != nil:
			st.errorf("runtime.memory_limit", "%q %v", r.MemoryLimit, err)
			return
		case n != 0 && n < minMemoryLimit:
			st.errorf("runtime.memory_limit", "%q is below the minimum 16MiB (\"0\" or \"off\" = no limit)", r.MemoryLimit)
			return
		}
		r.MemoryLimitBytes = n
		noLimit = n == 0
	}
	if r.GCPercent == -1 && r.GCPercentFrom != OriginEnv && noLimit {
		limit := "memory_limit is " + strconv.Quote(r.MemoryLimit)
		if r.MemoryLimitFrom == OriginEnv {
			limit = `GOMEMLIMIT is "off"`
		}
		st.errorf("runtime.gc_percent", "-1 turns the proportional GC off and needs a memory limit, but %s (no limit): set memory_limit", limit)
	}
}

var sizeUnits = map[string]int64{
	"": 1, "B": 1,
	"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
}

var errSize = errors.New(`is not a size: write bytes ("300000000") or a whole number with a unit ` +
	`(B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), like "512MiB"; "0" or "off" = no limit`)

// parseSize reads a byte count like "300000000", "64MiB" or "512MB"
// (units are case-sensitive); "off" is 0. The error completes a sentence
// that starts with the value.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "off" {
		return 0, nil
	}
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		i = len(s)
	}
	unit, ok := sizeUnits[strings.TrimSpace(s[i:])]
	if i == 0 || !ok {
		return 0, errSize
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil || n > math.MaxInt64/unit {
		return 0, errors.New("is too large")
	}
	return n * unit, nil
}
