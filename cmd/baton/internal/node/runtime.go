package node

import (
	"math"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"strconv"

	"go.uber.org/zap"

	"github.com/batonproxy/baton/config"
)

// runtimeValues are the Go runtime's GC settings.
type runtimeValues struct {
	gcPercent   int   // -1: the proportional GC is off
	memoryLimit int64 // math.MaxInt64: no limit
}

// runtimeState is what is in force after an apply, and where each value
// came from.
type runtimeState struct {
	values            runtimeValues
	gcFrom, limitFrom config.Origin
}

// currentRuntime reads the settings in force without changing them.
func currentRuntime() runtimeValues {
	s := []rtmetrics.Sample{{Name: "/gc/gogc:percent"}}
	rtmetrics.Read(s)
	gc := 100
	if s[0].Value.Kind() == rtmetrics.KindUint64 {
		gc = int(int64(s[0].Value.Uint64())) // -1 (off) reads as MaxUint64
	}
	return runtimeValues{gcPercent: gc, memoryLimit: debug.SetMemoryLimit(-1)}
}

// applyRuntime puts r in force. A setting r leaves to the environment
// (config.OriginEnv) gets its value from base, the settings the process had
// before the node changed anything (the Go runtime's reading of GOGC and
// GOMEMLIMIT), so a key removed from the file on reload goes back to the
// environment's value rather than keeping the file's old one. Only values
// that differ from those in force are set.
func applyRuntime(r config.Runtime, base runtimeValues) runtimeState {
	want := base
	if r.GCPercentFrom != config.OriginEnv {
		want.gcPercent = r.GCPercent
	}
	if r.MemoryLimitFrom != config.OriginEnv {
		want.memoryLimit = r.MemoryLimitBytes
		if want.memoryLimit == 0 {
			want.memoryLimit = math.MaxInt64
		}
	}
	cur := currentRuntime()
	setGC := func() {
		if cur.gcPercent != want.gcPercent {
			debug.SetGCPercent(want.gcPercent)
		}
	}
	setLimit := func() {
		if cur.memoryLimit != want.memoryLimit {
			debug.SetMemoryLimit(want.memoryLimit)
		}
	}
	// The proportional GC goes off only once the limit is in place.
	if want.gcPercent < 0 {
		setLimit()
		setGC()
	} else {
		setGC()
		setLimit()
	}
	return runtimeState{values: currentRuntime(), gcFrom: r.GCPercentFrom, limitFrom: r.MemoryLimitFrom}
}

// startRuntime applies [runtime] when the node starts. The caller holds
// reloadMu.
func (n *Node) startRuntime() {
	n.rtBase = currentRuntime()
	n.rtState = applyRuntime(n.cfg.Runtime, n.rtBase)
	n.logRuntime()
}

// reloadRuntime applies [runtime] from a reloaded configuration and reports
// whether anything changed (values or origins); it logs only then. The
// caller holds reloadMu.
func (n *Node) reloadRuntime(r config.Runtime) bool {
	st := applyRuntime(r, n.rtBase)
	if st == n.rtState {
		return false
	}
	n.rtState = st
	n.logRuntime()
	return true
}

func (n *Node) logRuntime() {
	s := n.rtState
	n.log.Info("runtime settings",
		zap.String("gc_percent", strconv.Itoa(s.values.gcPercent)+" ("+s.gcFrom.String()+")"),
		zap.String("memory_limit", formatLimit(s.values.memoryLimit)+" ("+s.limitFrom.String()+")"))
}

// formatLimit writes a memory limit the way the configuration does:
// "none", "64MiB", "512MB", or bytes.
func formatLimit(b int64) string {
	if b == math.MaxInt64 {
		return "none"
	}
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}} {
		if b >= u.size && b%u.size == 0 {
			return strconv.FormatInt(b/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(b, 10)
}
