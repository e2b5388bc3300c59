package node

import (
	"errors"
	"fmt"
	"reflect"
	"time"

	"go.uber.org/zap"

	"github.com/batonproxy/baton/config"
)

// ReloadResult says what a reload changed.
type ReloadResult struct {
	Applied    []string  `json:"applied"`     // sections whose new values are in force
	NotApplied []string  `json:"not_applied"` // changed keys that need a restart; old values kept
	LoadedAt   time.Time `json:"loaded_at"`
}

// restartOnly are the settings a running node cannot change: its identity,
// its listeners, its lease, its backend, its limits and its peer link. A reload keeps their old values
// and reports them.
var restartOnly = []struct {
	key string
	get func(*config.Config) any
}{
	{"node_name", func(c *config.Config) any { return c.NodeName }},
	{"listen", func(c *config.Config) any { return c.Listen }},
	{"backend", func(c *config.Config) any { return c.Backend }},
	{"probe", func(c *config.Config) any { return c.Probe }},
	{"admin.listen", func(c *config.Config) any { return c.Admin.Listen }},
	{"lease", func(c *config.Config) any { return c.Lease }},
	{"drain.advertise_url", func(c *config.Config) any { return c.Drain.AdvertiseURL }},
	{"tls", func(c *config.Config) any { return c.TLS }},
	{"limits", func(c *config.Config) any { return c.Limits }},
	{"log.format", func(c *config.Config) any { return c.Log.Format }},
	{"log.file", func(c *config.Config) any { return c.Log.File }},
	{"azure", func(c *config.Config) any { return c.Azure }},
	{"peer", func(c *config.Config) any { return c.Peer }},
}

// errNotRunning is returned by Reload before Run started the node.
var errNotRunning = errors.New("node: not running")

// Reload re-reads the configuration file and applies what can change
// safely: health checks, drain settings, hooks, the admin token,
// admin.pprof, the log level, the access log and [runtime]. An invalid file
// changes nothing. The role and the lease are never disturbed: a new health
// monitor starts with the verdict of the old one, so a reload does not flip
// the probe.
func (n *Node) Reload() (ReloadResult, error) {
	n.reloadMu.Lock()
	defer n.reloadMu.Unlock()
	ctx := n.runCtx
	if ctx == nil || ctx.Err() != nil {
		return ReloadResult{}, errNotRunning
	}
	next, err := config.Load(n.cfg.Path)
	if err != nil {
		n.reloadKO.Add(1)
		n.log.Warn("reload rejected: keeping the running configuration", zap.Error(err))
		return ReloadResult{}, fmt.Errorf("reload rejected, running configuration kept: %w", err)
	}
	old := n.live.Load()
	var res ReloadResult
	for _, r := range restartOnly {
		if !reflect.DeepEqual(r.get(n.cfg), r.get(next)) {
			res.NotApplied = append(res.NotApplied, r.key)
		}
	}
	// The live config: the new file, with the running values of every
	// restart-only setting.
	live := *next
	live.NodeName, live.Listen, live.Backend, live.Probe = n.cfg.NodeName, n.cfg.Listen, n.cfg.Backend, n.cfg.Probe
	live.Admin.Listen, live.Lease, live.TLS = n.cfg.Admin.Listen, n.cfg.Lease, n.cfg.TLS
	live.Drain.AdvertiseURL, live.Log.Format, live.Log.File = n.cfg.Drain.AdvertiseURL, n.cfg.Log.Format, n.cfg.Log.File
	live.Azure, live.Limits, live.Peer = n.cfg.Azure, n.cfg.Limits, n.cfg.Peer

	tok, err := readToken(&live)
	if err != nil {
		n.reloadKO.Add(1)
		n.log.Warn("reload rejected: keeping the running configuration", zap.Error(err))
		return ReloadResult{}, err
	}
	if !reflect.DeepEqual(old.Health, live.Health) {
		healthy, _ := n.monitor().Healthy()
		mon, err := newMonitor(&live, n.metrics, healthy, n.log)
		if err != nil {
			n.reloadKO.Add(1)
			n.log.Warn("reload rejected: keeping the running configuration", zap.Error(err))
			return ReloadResult{}, err
		}
		mon.Start(ctx)
		prev := n.mon.Swap(mon)
		select {
		case n.monSwap <- struct{}{}:
		default:
		}
		prev.Stop()
		res.Applied = append(res.Applied, "health")
	}
	if old.Admin.TokenFile != live.Admin.TokenFile || *n.token.Load() != tok {
		res.Applied = append(res.Applied, "admin.token_file")
	}
	n.token.Store(&tok)
	if !reflect.DeepEqual(old.Drain, live.Drain) {
		n.proxy.SetStandby(live.Drain.Standby, live.Drain.Hold.D())
		res.Applied = append(res.Applied, "drain")
	}
	if !reflect.DeepEqual(old.Hooks, live.Hooks) {
		res.Applied = append(res.Applied, "hooks")
	}
	if old.Log.Level != live.Log.Level {
		if lvl, err := zap.ParseAtomicLevel(live.Log.Level); err == nil && n.level != (zap.AtomicLevel{}) {
			n.level.SetLevel(lvl.Level())
			res.Applied = append(res.Applied, "log.level")
		}
	}
	if old.Log.Access != live.Log.Access {
		if live.Log.Access {
			n.proxy.SetAccessLog(n.log.Named("access"))
		} else {
			n.proxy.SetAccessLog(nil)
		}
		res.Applied = append(res.Applied, "log.access")
	}
	if old.Admin.Pprof != live.Admin.Pprof {
		res.Applied = append(res.Applied, "admin.pprof")
	}
	if n.reloadRuntime(live.Runtime) {
		res.Applied = append(res.Applied, "runtime")
	}
	if n.tls != nil && n.tls.static != nil {
		if err := n.tls.reload(); err == nil {
			res.Applied = append(res.Applied, "tls certificates")
		} else {
			res.NotApplied = append(res.NotApplied, "tls certificates (bad file: "+err.Error()+")")
		}
	}
	n.live.Store(&live)
	res.LoadedAt = time.Now()
	n.loadedAt.Store(&res.LoadedAt)
	n.reloadOK.Add(1)
	n.log.Info("configuration reloaded", zap.Strings("applied", res.Applied))
	if len(res.NotApplied) > 0 {
		n.log.Warn("changed settings need a restart; their old values stay in force", zap.Strings("keys", res.NotApplied))
	}
	return res, nil
}

func (n *Node) reloads() (applied, rejected uint64) { return n.reloadOK.Load(), n.reloadKO.Load() }
