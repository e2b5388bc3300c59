package config

import "time"

// Config is the whole baton configuration after decoding, defaults and
// validation. Durations are parsed; listen addresses and advertise_url have
// their go-sockaddr templates resolved; secrets are NOT read here (only the
// names of the files / environment variables that hold them).
type Config struct {
	// Path is the file the configuration was loaded from ("" for LoadBytes).
	Path     string `toml:"-"`
	NodeName string `toml:"node_name"` // default: os.Hostname()

	Listen  Listen  `toml:"listen"`
	Backend Backend `toml:"backend"`
	Probe   Probe   `toml:"probe"`
	Admin   Admin   `toml:"admin"`
	Lease   Lease   `toml:"lease"`
	Health  Health  `toml:"health"`
	Drain   Drain   `toml:"drain"`
	TLS     TLS     `toml:"tls"`
	Log     Log     `toml:"log"`
	Peer    Peer    `toml:"peer"`
	Azure   Azure   `toml:"azure"` // config/azure.go
	Limits  Limits  `toml:"limits"`
	Hooks   Hooks   `toml:"hooks"`
	Runtime Runtime `toml:"runtime"` // keep last: Redacted appends to its table

	// LoadWarnings are warnings Load found that the values alone do not
	// show (see azendpoint.go); Timing().Warnings includes them.
	LoadWarnings []string `toml:"-"`
}

// Hooks are commands run when this node's role changes: on_active when it
// becomes active, on_standby when it stops being active. They run in the
// background with a timeout (killed with their children at it) and never
// block the election or the proxy. Environment: BATON_NODE, BATON_ROLE,
// BATON_TERM, BATON_HOLDER, BATON_REASON.
type Hooks struct {
	OnActive  []string `toml:"on_active"`  // argv; [] disables
	OnStandby []string `toml:"on_standby"` // argv; [] disables
	Timeout   Duration `toml:"timeout"`    // default 30s
}

type Listen struct {
	HTTP  string `toml:"http"`  // default ":80"; "" disables
	HTTPS string `toml:"https"` // default ""; needs [tls]
}

type Backend struct {
	URL           string `toml:"url"`            // default "http://127.0.0.1:8080"
	FencingHeader string `toml:"fencing_header"` // default "Baton-Term"; "" disables (an explicit "" is kept)
	// Timeouts of the proxy towards the backend.
	DialTimeout           Duration `toml:"dial_timeout"`            // default 2s
	ResponseHeaderTimeout Duration `toml:"response_header_timeout"` // default 60s
	MaxIdleConns          int      `toml:"max_idle_conns"`          // default 256
	// FastPath serves requests to a plain-HTTP backend, with or without a
	// body, over baton's own keep-alive connections instead of net/http's
	// Transport (much less CPU per request); upgrades and requests that
	// announce trailers still take the Transport. false sends everything
	// through the Transport. Default true.
	FastPath *bool `toml:"fast_path"`
	// UpgradeProtocols are the protocols a client may upgrade a
	// connection to (tunnelled to the app until it ends or a drain
	// deadline cuts it). Default ["websocket"]; [] allows none. "h2c" is
	// refused: requests multiplexed in a tunnel would bypass the fence.
	UpgradeProtocols []string `toml:"upgrade_protocols"`
	// IdentifyHeader, when set, is a response header naming this node and
	// the term ("node-a; term=7") on every answer the node serves from its
	// own backend, so a client can tell which node answered (`baton
	// drill`). Default "" (off): it tells every client the node names.
	IdentifyHeader string `toml:"identify_header"`
}

// Limits bound what clients can make a node do (README, "Limits and
// hardening"). They need a restart to change. The node lowers max_conns
// and max_backend_conns at start when the process's open-files limit
// cannot hold them (logged).
type Limits struct {
	// MaxConns caps the client connections of each main listener
	// (listen.http, listen.https). At the cap the longest-idle keep-alive
	// connection is closed; with none idle new clients wait. Default 10000.
	MaxConns int `toml:"max_conns"`
	// MaxBackendConns caps the requests at the backend (or, on a standby,
	// at the active node) at once. Default 1024.
	MaxBackendConns int `toml:"max_backend_conns"`
	// BackendQueueTimeout is how long a request past max_backend_conns
	// waits for a slot before it gets 503. Default 5s; 0: no wait.
	BackendQueueTimeout Duration `toml:"backend_queue_timeout"`
	// ClientTimeout fails a request body read or an answer write that
	// makes no progress for this long (408, or the connection cut).
	// Default 30s.
	ClientTimeout Duration `toml:"client_timeout"`
	// BufferBody is the largest request body (bytes) read in full before
	// the request reaches the backend, so a slow client holds no backend
	// connection. Default 65536; 0: stream every body.
	BufferBody int `toml:"buffer_body"`
	// HTTP2MaxStreams bounds the concurrent streams of one HTTP/2
	// connection. Default 100.
	HTTP2MaxStreams int `toml:"http2_max_streams"`
}

type Probe struct {
	Listen      string   `toml:"listen"`       // default ":8081"
	Path        string   `toml:"path"`         // default "/probe"; must start with "/"
	Mode        string   `toml:"mode"`         // "http" (default) | "tcp"
	Allow       []string `toml:"allow"`        // CIDRs; empty: anyone
	LBInterval  Duration `toml:"lb_interval"`  // default 5s
	LBThreshold int      `toml:"lb_threshold"` // default 1
}

type Admin struct {
	Listen    string `toml:"listen"`     // default "127.0.0.1:8082"
	TokenFile string `toml:"token_file"` // required for step-down / maintenance / pprof
	// Pprof serves net/http/pprof under /debug/pprof/ to requests with the
	// admin token. Default false; true needs token_file.
	Pprof bool `toml:"pprof"`
}

type Lease struct {
	Backend          string   `toml:"backend"`           // "azblob" (default) | "file"
	Duration         Duration `toml:"duration"`          // default 15s; azblob: whole seconds in [15s, 60s]
	RenewInterval    Duration `toml:"renew_interval"`    // default 3s
	RenewDeadline    Duration `toml:"renew_deadline"`    // default 10s
	RetryInterval    Duration `toml:"retry_interval"`    // default 1s
	CandidacyBackoff Duration `toml:"candidacy_backoff"` // default 10s
	// StateDir holds the instance lock and the lease ID that lets a
	// restarted process take its predecessor's lease over. Default: the
	// lease file's folder for the file backend, else /var/lib/baton
	// (Windows: the configuration file's folder). Keep it on a local disk.
	StateDir string `toml:"state_dir"`
	// Failsafe keeps the active serving through a storage outage while
	// every peer (over [peer]) promises not to take the lease. Default
	// false: [peer] peers must then list every other node that competes
	// for this lease.
	Failsafe bool `toml:"failsafe"`
	// ClockJump: when the wall clock and the monotonic clock disagree
	// about the time elapsed by more than this (a VM paused by its
	// hypervisor, a wall-clock step), the active stops serving until a
	// renew confirms its lease. Default 1s; "0s" turns the detector off
	// (the fence still checks both clocks).
	ClockJump Duration    `toml:"clock_jump"`
	File      FileLease   `toml:"file"`
	AzBlob    AzBlobLease `toml:"azblob"`
}

type FileLease struct {
	Path string `toml:"path"` // default "/var/lib/baton/lease" (Windows: "lease" in the configuration file's folder)
}

type AzBlobLease struct {
	AccountURL string `toml:"account_url"` // required for azblob
	Container  string `toml:"container"`   // default "baton"
	Blob       string `toml:"blob"`        // default "leader"
	Auth       string `toml:"auth"`        // "default" | "managed-identity" | "connection-string" | "shared-key" | "sas"
	ClientID   string `toml:"client_id"`   // managed-identity: user-assigned identity's client ID (optional)

	ConnectionStringEnv  string `toml:"connection_string_env"`
	ConnectionStringFile string `toml:"connection_string_file"`
	AccountName          string `toml:"account_name"` // shared-key; default: parsed from account_url
	AccountKeyEnv        string `toml:"account_key_env"`
	AccountKeyFile       string `toml:"account_key_file"`
	SASTokenEnv          string `toml:"sas_token_env"`
	SASTokenFile         string `toml:"sas_token_file"`

	// CallTimeout bounds one storage call (one try). Default 2s; must be <
	// renew_interval.
	CallTimeout Duration `toml:"call_timeout"`
}

type Health struct {
	Checks  []Check `toml:"check"`
	Passive Passive `toml:"passive"`
	History int     `toml:"history"` // results kept per check for /status; default 10
}

type Check struct {
	Name     string   `toml:"name"`     // required, unique
	Type     string   `toml:"type"`     // "http" | "tcp" | "exec"
	Interval Duration `toml:"interval"` // default 2s
	Timeout  Duration `toml:"timeout"`  // default 1s; must be <= interval
	Rise     int      `toml:"rise"`     // default 2; >= 1
	Fall     int      `toml:"fall"`     // default 2; >= 1
	Required *bool    `toml:"required"` // default true

	// http
	URL           string            `toml:"url"`    // default: backend.url
	Method        string            `toml:"method"` // default GET
	Headers       map[string]string `toml:"headers"`
	Host          string            `toml:"host"`
	ExpectStatus  []StatusRange     `toml:"expect_status"` // default [200-399]; entries 200 or "2xx" or "200-299"
	BodyRegex     string            `toml:"body_regex"`
	TLSCAFile     string            `toml:"tls_ca_file"`
	TLSSkipVerify bool              `toml:"tls_skip_verify"`
	MaxBodyBytes  int64             `toml:"max_body_bytes"` // default 64 KiB

	// tcp
	Address string `toml:"address"` // go-sockaddr template allowed, resolved at load

	// exec
	Command []string `toml:"command"` // argv; command[0] must exist (PATH lookup) at load
}

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ Min, Max int }

type Passive struct {
	// Error rate: unhealthy when, over Window, at least MinRequests were seen
	// and the fraction of 5xx / proxy errors is >= ErrorRate. 0 disables.
	ErrorRate   float64  `toml:"error_rate"`   // in (0, 1]; 0: off (default)
	Window      Duration `toml:"window"`       // default 10s
	MinRequests int      `toml:"min_requests"` // default 20
	// Overload: unhealthy while more than MaxInFlight requests are in flight
	// to the backend. 0: off (default).
	MaxInFlight int      `toml:"max_in_flight"`
	Cooldown    Duration `toml:"cooldown"` // how long a tripped signal keeps the node unhealthy; default 30s
	// Paths are error rates over the requests under a path prefix
	// ([[health.passive.path]], see passive.go), beside the global one.
	Paths []PassivePath `toml:"path"`
}

type Drain struct {
	Timeout      Duration `toml:"timeout"`       // default 30s
	Standby      string   `toml:"standby"`       // "forward" (default) | "reject"
	Hold         Duration `toml:"hold"`          // default 5s
	AdvertiseURL string   `toml:"advertise_url"` // go-sockaddr template allowed; default http://<listen.http with unspecified host replaced by the primary private IP or 127.0.0.1>
	// ExitDelay is how long a stopping process keeps its listeners open
	// (forwarding) after the probe went 503. Default probe.lb_interval *
	// probe.lb_threshold + 1s.
	ExitDelay Duration `toml:"exit_delay"`
}

type TLS struct {
	MinVersion   string        `toml:"min_version"`   // "1.2" (default) | "1.3"
	RedirectHTTP *bool         `toml:"redirect_http"` // default true when listen.https is set
	HSTS         Duration      `toml:"hsts"`          // max-age; 0 disables (default)
	Certificates []Certificate `toml:"certificate"`
	ACME         ACME          `toml:"acme"`
}

type Certificate struct {
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
}

type ACME struct {
	Domains       []string `toml:"domains"`
	Email         string   `toml:"email"`
	CA            string   `toml:"ca"`             // directory URL; default Let's Encrypt production
	CARoot        string   `toml:"ca_root"`        // PEM file of an extra trusted root
	Storage       string   `toml:"storage"`        // "file" (default) | "azblob"
	StoragePath   string   `toml:"storage_path"`   // file storage folder; default /var/lib/baton/certmagic
	StoragePrefix string   `toml:"storage_prefix"` // azblob: blob name prefix; default "certmagic/"
	// Challenges the CA may use: "http-01" (on listen.http's port) and
	// "tls-alpn-01" (on listen.https's port). Default: both.
	Challenges []string `toml:"challenges"`
}

type Log struct {
	Level  string `toml:"level"`  // "debug" | "info" (default) | "warn" | "error"
	Format string `toml:"format"` // "json" (default) | "console"
	File   string `toml:"file"`   // "" = stderr
	Access bool   `toml:"access"` // one line per request
}

// Runtime is [runtime]: settings of the Go runtime, applied at start and on
// every reload. A key the file does not write is left to the Go runtime
// when its environment variable (GOGC, GOMEMLIMIT) is set and not empty:
// the operator's environment wins over baton's default, the file wins over
// both. Load records where each value came from.
type Runtime struct {
	// GCPercent is passed to runtime/debug.SetGCPercent: -1 (the
	// proportional GC off, only with a memory limit) or 10..10000. Default
	// DefaultGCPercent. Zero when GCPercentFrom is OriginEnv.
	GCPercent int `toml:"gc_percent,omitzero"`
	// MemoryLimit is passed to runtime/debug.SetMemoryLimit: a size
	// ("64MiB", "1GiB", "512MB", "300000000" bytes), at least 16MiB, or
	// "0" / "off" for no limit. Default DefaultMemoryLimit; "" = the default.
	// Empty when MemoryLimitFrom is OriginEnv.
	MemoryLimit string `toml:"memory_limit,omitempty"`

	// Filled by Load.
	MemoryLimitBytes int64  `toml:"-"` // memory_limit in bytes; 0: no limit
	GCPercentFrom    Origin `toml:"-"`
	MemoryLimitFrom  Origin `toml:"-"`
}

// Origin says where a [runtime] value comes from.
type Origin uint8

const (
	// OriginDefault: baton's default (DefaultGCPercent, DefaultMemoryLimit).
	OriginDefault Origin = iota
	// OriginConfig: written in the file.
	OriginConfig
	// OriginEnv: not written, and GOGC / GOMEMLIMIT is set: baton leaves
	// the setting to the Go runtime, which read the variable at start.
	OriginEnv
)

// Duration is a time.Duration that decodes from a TOML string like "15s".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Peer is the direct link between the nodes of a pair: pushes on release
// and acquisition, a standby that asks the holder instead of the storage,
// and step-down to a named node. Off unless listen is set; with the link
// down a node behaves as without it.
type Peer struct {
	Listen     string   `toml:"listen"`      // "" (default): no link; go-sockaddr template allowed, e.g. "{{ GetPrivateIP }}:8083"
	Peers      []string `toml:"peers"`       // the other nodes' peer addresses (host:port); templates allowed
	SecretFile string   `toml:"secret_file"` // the shared secret, from a file ...
	SecretEnv  string   `toml:"secret_env"`  // ... or an environment variable
	Timeout    Duration `toml:"timeout"`     // default 500ms: bounds every call on the link
}
