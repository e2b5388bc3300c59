package node

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/batonproxy/baton/config"
	"github.com/batonproxy/baton/lease/azlock"
	"github.com/batonproxy/baton/lease/history"
)

// historyFlush bounds how long a stopping node waits for its last history
// records (the end of its term) to be written, after the lease was
// released and the drain finished.
const historyFlush = 2 * time.Second

// HistoryStore returns the store of the term history (package
// lease/history) beside the configured lease: the file
// "<lease.file.path>.history", or the blob "<lease.azblob.blob>.history"
// in the lease's container. It reads the storage secrets the way the lease
// does and makes no storage call. `baton history` reads it directly.
func HistoryStore(cfg *config.Config, log *zap.Logger) (history.Store, error) {
	switch cfg.Lease.Backend {
	case "file":
		f, err := history.NewFile(cfg.Lease.File.Path + history.Suffix)
		if err != nil {
			return nil, fmt.Errorf("lease.file.path: %w", err)
		}
		return f, nil
	case "azblob":
		c, err := azblobClient(cfg)
		if err != nil {
			return nil, err
		}
		a := cfg.Lease.AzBlob
		return azlock.NewHistory(azlock.Options{Options: c, Container: a.Container, Blob: a.Blob}, log)
	default:
		return nil, fmt.Errorf("lease.backend: unknown backend %q", cfg.Lease.Backend)
	}
}

// newRecorder builds the writer of this node's terms into the history. A
// store that cannot be built leaves the node without a history (logged):
// the history never stops a node from running.
func newRecorder(cfg *config.Config, inherited bool, log *zap.Logger) *history.Recorder {
	store, err := HistoryStore(cfg, log)
	if err != nil {
		log.Warn("lease history disabled: its store cannot be built", zap.Error(err))
		return nil
	}
	return history.NewRecorder(store, history.Options{Node: cfg.NodeName, Inherited: inherited}, log)
}
