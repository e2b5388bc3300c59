package node

import (
	"go.uber.org/zap"

	"github.com/batonproxy/baton/config"
)

// reservedFDs are the descriptors kept out of [limits] for everything but
// client and backend connections: the probe, the admin API and the peer
// link with their clients, the storage, health checks, logs, hooks, the
// Go runtime.
const reservedFDs = 256

// effectiveLimits returns [limits] max_conns and max_backend_conns lowered,
// if needed, so that every main listener at its cap plus the backend at
// its cap fit in the process's open-files limit (openFiles; 0: unknown, no
// change) with reservedFDs to spare. It logs what it lowered and why.
func effectiveLimits(l config.Limits, mainListeners int, openFiles uint64, log *zap.Logger) (maxConns, maxBackend int) {
	maxConns, maxBackend = l.MaxConns, l.MaxBackendConns
	if openFiles == 0 || mainListeners == 0 {
		return maxConns, maxBackend
	}
	budget := int(min(openFiles, 1<<30)) - reservedFDs
	// A client connection may need a backend connection too: each client
	// slot costs one descriptor, each backend slot one more.
	if need := maxConns*mainListeners + maxBackend; need <= budget {
		return maxConns, maxBackend
	}
	budget = max(budget, 2*mainListeners+2)
	// Keep the ratio: the backend cap at most a quarter of the budget.
	maxBackend = max(min(maxBackend, budget/4), 1)
	maxConns = max(min(maxConns, (budget-maxBackend)/mainListeners), 1)
	log.Warn("limits lowered to fit the open-files limit (raise LimitNOFILE / ulimit -n to keep the configured ones)",
		zap.Uint64("open_files", openFiles), zap.Int("reserved", reservedFDs),
		zap.Int("max_conns", maxConns), zap.Int("configured_max_conns", l.MaxConns),
		zap.Int("max_backend_conns", maxBackend), zap.Int("configured_max_backend_conns", l.MaxBackendConns))
	return maxConns, maxBackend
}

func (n *Node) limitsStatus() LimitsStatus {
	ls := LimitsStatus{MaxConns: n.maxConns, MaxBackendConns: n.maxBackend, ClientConns: map[string]int{}}
	for _, l := range n.listeners {
		if l.lim != nil {
			ls.ClientConns[l.key] = l.lim.Open()
			ls.IdleClosed += l.lim.IdleClosed()
		}
	}
	ls.BackendInUse, ls.BackendWaiting, _ = n.proxy.BackendSlots()
	return ls
}
