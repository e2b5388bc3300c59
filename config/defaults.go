package config

import (
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/batonproxy/baton/internal/azure"
)

// Documented defaults (see types.go and baton.example.toml).
const (
	DefaultListenHTTP    = ":80"
	DefaultBackendURL    = "http://127.0.0.1:8080"
	DefaultFencingHeader = "Baton-Term"
	DefaultProbeListen   = ":8081"
	DefaultProbePath     = "/probe"
	DefaultAdminListen   = "127.0.0.1:8082"
	DefaultContainer     = "baton"
	DefaultBlob          = "leader"
	DefaultACMECA        = "https://acme-v02.api.letsencrypt.org/directory"
	ChallengeHTTP01      = "http-01"
	ChallengeTLSALPN01   = "tls-alpn-01"
	DefaultStoragePrefix = "certmagic/"
	DefaultCheckName     = "backend"
	DefaultMaxBodyBytes  = 64 << 10
	defaultMaxIdleConns  = 256
	// DefaultMaxConns and DefaultMaxBackendConns are [limits] max_conns
	// (per main listener) and max_backend_conns.
	DefaultMaxConns        = 10000
	DefaultMaxBackendConns = 1024
	defaultHistory         = 10
	defaultPassiveMinReqs  = 20

	// DefaultGCPercent is [runtime] gc_percent when neither the file nor
	// GOGC sets it. A proxy's live heap is small, so Go's own default (100)
	// collects very often; 400 trades a little memory for CPU and for
	// fewer requests that meet a collection (bench/README.md, "GC and
	// memory defaults").
	DefaultGCPercent = 400
	// DefaultMemoryLimit is [runtime] memory_limit when neither the file nor
	// GOMEMLIMIT sets it: with gc_percent 400 the heap may grow to five
	// times the live data; past this soft limit the GC works harder
	// instead (about 10,000 connections' worth; "0": no limit).
	DefaultMemoryLimit = "256MiB"
)

// DefaultLeaseFile is the default [lease.file] path for this OS (on
// Windows, for a configuration that is not read from a file).
func DefaultLeaseFile() string { return stateDir("lease") }

// DefaultACMEStorage is the default [tls.acme] storage_path for this OS
// (on Windows, for a configuration that is not read from a file).
func DefaultACMEStorage() string { return stateDir("certmagic") }

// stateBaseFor is where the state of the configuration file at path goes
// by default: on Windows its own folder, so that a service's lease file,
// lease ID, instance lock and certificates are next to its configuration
// and its log (for the .msi's %ProgramData%\baton\baton.toml that is
// %ProgramData%\baton, as before); elsewhere "": /var/lib/baton, not /etc.
func stateBaseFor(path string) string {
	if runtime.GOOS != "windows" {
		return ""
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return ""
	}
	return filepath.Dir(abs)
}

// stateDir is the default folder, or file in it, for this load's state.
func (st *state) stateDir(name string) string {
	if st.stateBase != "" {
		return filepath.Join(st.stateBase, name)
	}
	return stateDir(name)
}

func stateDir(name string) string {
	if runtime.GOOS == "windows" {
		base := os.Getenv("ProgramData")
		if base == "" {
			base = `C:\ProgramData`
		}
		return filepath.Join(base, "baton", name)
	}
	return filepath.Join("/var/lib/baton", name)
}

func setDur(d *Duration, written bool, v time.Duration) {
	if !written {
		*d = Duration(v)
	}
}

func setStr(s *string, v string) {
	if *s == "" {
		*s = v
	}
}

func setInt[T int | int64](n *T, written bool, v T) {
	if !written {
		*n = v
	}
}

// defaults fills what the file left out. Strings default when empty (the
// reference config writes `key = ""` for "use the default"), except
// listen.http and backend.fencing_header where an explicit "" disables.
// Durations and numbers default only when absent, so an explicit 0 is
// validated rather than silently replaced.
func (st *state) defaults(c *Config) {
	if c.NodeName == "" {
		h, err := st.hostname()
		if err != nil {
			st.errorf("node_name", "not set and the host name is unknown (%v): set node_name", err)
		}
		c.NodeName = h
	}

	if !st.has("listen", "http") {
		c.Listen.HTTP = DefaultListenHTTP
	}

	b := &c.Backend
	setStr(&b.URL, DefaultBackendURL)
	if !st.has("backend", "fencing_header") {
		b.FencingHeader = DefaultFencingHeader
	}
	setDur(&b.DialTimeout, st.has("backend", "dial_timeout"), 2*time.Second)
	setDur(&b.ResponseHeaderTimeout, st.has("backend", "response_header_timeout"), 60*time.Second)
	setInt(&b.MaxIdleConns, st.has("backend", "max_idle_conns"), defaultMaxIdleConns)
	if b.FastPath == nil {
		b.FastPath = ptr(true)
	}
	if b.UpgradeProtocols == nil {
		b.UpgradeProtocols = []string{"websocket"}
	}

	lim := &c.Limits
	setInt(&lim.MaxConns, st.has("limits", "max_conns"), DefaultMaxConns)
	setInt(&lim.MaxBackendConns, st.has("limits", "max_backend_conns"), DefaultMaxBackendConns)
	setDur(&lim.BackendQueueTimeout, st.has("limits", "backend_queue_timeout"), 5*time.Second)
	setDur(&lim.ClientTimeout, st.has("limits", "client_timeout"), 30*time.Second)
	setInt(&lim.BufferBody, st.has("limits", "buffer_body"), 64<<10)
	setInt(&lim.HTTP2MaxStreams, st.has("limits", "http2_max_streams"), 100)

	p := &c.Probe
	setStr(&p.Listen, DefaultProbeListen)
	setStr(&p.Path, DefaultProbePath)
	setStr(&p.Mode, "http")
	setDur(&p.LBInterval, st.has("probe", "lb_interval"), 5*time.Second)
	setInt(&p.LBThreshold, st.has("probe", "lb_threshold"), 1)

	setStr(&c.Admin.Listen, DefaultAdminListen)

	l := &c.Lease
	setStr(&l.Backend, "azblob")
	setDur(&l.Duration, st.has("lease", "duration"), 15*time.Second)
	setDur(&l.RenewInterval, st.has("lease", "renew_interval"), 3*time.Second)
	setDur(&l.RenewDeadline, st.has("lease", "renew_deadline"), 10*time.Second)
	setDur(&l.RetryInterval, st.has("lease", "retry_interval"), 1*time.Second)
	setDur(&l.CandidacyBackoff, st.has("lease", "candidacy_backoff"), 10*time.Second)
	setDur(&l.ClockJump, st.has("lease", "clock_jump"), time.Second)
	setStr(&l.File.Path, st.stateDir("lease"))
	if l.StateDir == "" {
		if l.Backend == "file" {
			l.StateDir = filepath.Dir(l.File.Path)
		} else {
			l.StateDir = st.stateDir("")
		}
	}
	setDur(&c.Peer.Timeout, st.has("peer", "timeout"), 500*time.Millisecond)
	if c.Peer.Peers == nil {
		c.Peer.Peers = []string{}
	}
	az := &l.AzBlob
	setStr(&az.Container, DefaultContainer)
	setStr(&az.Blob, DefaultBlob)
	setStr(&az.Auth, "default")
	setDur(&az.CallTimeout, st.has("lease", "azblob", "call_timeout"), 2*time.Second)
	if az.Auth == "shared-key" && az.AccountName == "" {
		az.AccountName = azure.AccountNameFromURL(az.AccountURL)
	}

	h := &c.Health
	setInt(&h.History, st.has("health", "history"), defaultHistory)
	setDur(&h.Passive.Window, st.has("health", "passive", "window"), 10*time.Second)
	setInt(&h.Passive.MinRequests, st.has("health", "passive", "min_requests"), defaultPassiveMinReqs)
	setDur(&h.Passive.Cooldown, st.has("health", "passive", "cooldown"), 30*time.Second)
	st.passivePathDefaults(&h.Passive)
	if len(h.Checks) == 0 {
		h.Checks = []Check{{Name: DefaultCheckName, Type: "http"}}
	}
	for i := range h.Checks {
		st.checkDefaults(c, i)
	}

	d := &c.Drain
	setDur(&d.Timeout, st.has("drain", "timeout"), 30*time.Second)
	setStr(&d.Standby, "forward")
	setDur(&d.Hold, st.has("drain", "hold"), 5*time.Second)
	setDur(&d.ExitDelay, st.has("drain", "exit_delay"),
		p.LBInterval.D()*time.Duration(max(p.LBThreshold, 0))+time.Second)

	t := &c.TLS
	setStr(&t.MinVersion, "1.2")
	if t.RedirectHTTP == nil {
		t.RedirectHTTP = ptr(c.Listen.HTTPS != "" && c.Listen.HTTP != "")
	}
	a := &t.ACME
	setStr(&a.CA, DefaultACMECA)
	if a.Challenges == nil {
		a.Challenges = []string{ChallengeTLSALPN01}
		if c.Listen.HTTP != "" {
			a.Challenges = []string{ChallengeHTTP01, ChallengeTLSALPN01}
		}
	}
	setStr(&a.Storage, "file")
	setStr(&a.StoragePath, st.stateDir("certmagic"))
	setStr(&a.StoragePrefix, DefaultStoragePrefix)

	// One representation for "none", so a config and its Redacted form
	// compare equal: lists shown in the effective config are empty, not nil;
	// the others are nil.
	if c.Probe.Allow == nil {
		c.Probe.Allow = []string{}
	}
	if a.Domains == nil {
		a.Domains = []string{}
	}
	if len(t.Certificates) == 0 {
		t.Certificates = nil
	}
	for i := range h.Checks {
		ch := &h.Checks[i]
		if len(ch.Headers) == 0 {
			ch.Headers = nil
		}
		if len(ch.Command) == 0 {
			ch.Command = nil
		}
	}

	setDur(&c.Hooks.Timeout, st.has("hooks", "timeout"), 30*time.Second)
	if len(c.Hooks.OnActive) == 0 {
		c.Hooks.OnActive = nil
	}
	if len(c.Hooks.OnStandby) == 0 {
		c.Hooks.OnStandby = nil
	}

	st.azureDefaults(c) // after lease.backend

	setStr(&c.Log.Level, "info")
	setStr(&c.Log.Format, "json")

	st.runtimeDefaults(c)
}

func (st *state) checkDefaults(c *Config, i int) {
	ch := &c.Health.Checks[i]
	has := func(k string) bool { return st.checkHas(i, k) }
	setStr(&ch.Type, "http")
	setDur(&ch.Interval, has("interval"), 2*time.Second)
	// The timeout defaults to 1s, or to the interval if that is shorter.
	setDur(&ch.Timeout, has("timeout"), min(time.Second, max(ch.Interval.D(), 0)))
	setInt(&ch.Rise, has("rise"), 2)
	setInt(&ch.Fall, has("fall"), 2)
	if ch.Required == nil {
		ch.Required = ptr(true)
	}
	if ch.Type == "http" {
		setStr(&ch.URL, c.Backend.URL)
		setStr(&ch.Method, "GET")
		if !has("expect_status") {
			ch.ExpectStatus = []StatusRange{{Min: 200, Max: 399}}
		}
		setInt(&ch.MaxBodyBytes, has("max_body_bytes"), DefaultMaxBodyBytes)
	}
}

func ptr[T any](v T) *T { return &v }
