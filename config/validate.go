package config

import (
	"crypto/tls"
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/batonproxy/baton/internal/azure"
	"github.com/batonproxy/baton/internal/fsutil"
)

var (
	leaseBackends = []string{"azblob", "file"}
	authModes     = []string{"default", "managed-identity", "connection-string", "shared-key", "sas"}
	probeModes    = []string{"http", "tcp"}
	checkTypes    = []string{"http", "tcp", "exec"}
	standbyModes  = []string{"forward", "reject"}
	tlsVersions   = []string{"1.2", "1.3"}
	logLevels     = []string{"debug", "info", "warn", "error"}
	logFormats    = []string{"json", "console"}
	acmeStorages  = []string{"file", "azblob"}
)

// derived fills the defaults that depend on other, already resolved values.
func (st *state) derived(c *Config) {
	if c.Drain.AdvertiseURL != "" || c.Listen.HTTP == "" || st.failed["listen.http"] {
		return
	}
	host, port, err := net.SplitHostPort(c.Listen.HTTP)
	if err != nil {
		return // reported by validate
	}
	if isUnspecified(host) {
		host = "127.0.0.1"
		if ip, err := st.privateIP(); err == nil {
			if f := strings.Fields(ip); len(f) > 0 {
				host = f[0]
			}
		}
	}
	c.Drain.AdvertiseURL = "http://" + net.JoinHostPort(host, port)
	st.advertiseDerived = true
}

func isUnspecified(host string) bool {
	if host == "" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsUnspecified()
}

func (st *state) validate(c *Config) {
	st.validateNode(c)
	st.validateListen(c)
	st.validateBackend(c)
	st.validateProbe(c)
	st.validateAdmin(c)
	st.validateLease(c)
	st.validateHealth(c)
	st.validateDrain(c)
	st.validateTLS(c)
	st.validateLog(c)
	st.validateHooks(c)
	st.validateRuntime(c)
	st.validatePeer(c)
	st.validateLimits(c)
	st.validateAzure(c)
}

func (st *state) validateLimits(c *Config) {
	l := c.Limits
	for _, n := range []struct {
		key string
		v   int
		min int
	}{
		{"limits.max_conns", l.MaxConns, 1},
		{"limits.max_backend_conns", l.MaxBackendConns, 1},
		{"limits.buffer_body", l.BufferBody, 0},
		{"limits.http2_max_streams", l.HTTP2MaxStreams, 1},
	} {
		if n.v < n.min {
			st.errorf(n.key, "must be at least %d, got %d", n.min, n.v)
		}
	}
	if l.BufferBody > 16<<20 {
		st.errorf("limits.buffer_body", "at most 16777216 (16 MiB), got %d: bodies that size are held in memory", l.BufferBody)
	}
	st.nonNegative("limits.backend_queue_timeout", l.BackendQueueTimeout)
	st.positive("limits.client_timeout", l.ClientTimeout)
	for i, p := range c.Backend.UpgradeProtocols {
		switch {
		case !isToken(p):
			st.errorf("backend.upgrade_protocols", "entry %d %q is not a protocol name (a token, without spaces or separators)", i, p)
		case strings.EqualFold(p, "h2c"):
			st.errorf("backend.upgrade_protocols", "h2c cannot be allowed: requests multiplexed in an upgraded connection would reach the app past the fence")
		}
	}
}

func (st *state) validateHooks(c *Config) {
	st.positive("hooks.timeout", c.Hooks.Timeout)
	for _, h := range []struct {
		key  string
		argv []string
	}{{"hooks.on_active", c.Hooks.OnActive}, {"hooks.on_standby", c.Hooks.OnStandby}} {
		key, argv := h.key, h.argv
		if len(argv) == 0 {
			continue
		}
		if argv[0] == "" {
			st.errorf(key, "the command (first element) is empty")
			continue
		}
		if _, err := st.lookPath(argv[0]); err != nil {
			var ee *exec.Error
			if errors.As(err, &ee) {
				err = ee.Err
			}
			st.errorf(key, "%q is not an executable on this host: %v", argv[0], err)
		}
	}
}

func (st *state) oneOf(key, v string, allowed []string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	st.errorf(key, "%q is not one of %s", v, quoteList(allowed))
	return false
}

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

func (st *state) nonNegative(key string, d Duration) {
	if d < 0 {
		st.errorf(key, "must not be negative (got %s)", d)
	}
}

func (st *state) positive(key string, d Duration) bool {
	if d <= 0 {
		st.errorf(key, "must be positive (got %s)", d)
		return false
	}
	return true
}

// fileExists reports a missing file. Other stat errors (permission) are
// left to the component that opens it: check-config may run as another
// user than the service.
func (st *state) fileExists(key, path string) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		st.errorf(key, "file %q does not exist", path)
	}
}

// keyPair reports a certificate and key that exist but cannot be used
// together (not PEM, wrong key, corrupt), or that are larger than
// fsutil.MaxPEMFile (what the proxy reads). Unreadable files are left to
// the service: check-config may run as another user.
func (st *state) keyPair(base string, c Certificate) {
	if c.CertFile == "" || c.KeyFile == "" {
		return
	}
	for _, f := range []string{c.CertFile, c.KeyFile} {
		if _, err := os.Stat(f); err != nil {
			return // reported as missing, or not ours to judge
		}
	}
	var pem [2][]byte
	for i, f := range []struct{ key, path string }{{".cert_file", c.CertFile}, {".key_file", c.KeyFile}} {
		b, err := fsutil.ReadFileLimit(f.path, fsutil.MaxPEMFile)
		switch {
		case errors.Is(err, fsutil.ErrTooLarge):
			st.errorf(base+f.key, "file %q is larger than %s", f.path, fsutil.FormatSize(fsutil.MaxPEMFile))
			return
		case errors.Is(err, fs.ErrPermission):
			return
		case err != nil:
			st.errorf(base+".key_file", "cannot be used with %s: %v", c.CertFile, err)
			return
		}
		pem[i] = b
	}
	if _, err := tls.X509KeyPair(pem[0], pem[1]); err != nil {
		st.errorf(base+".key_file", "cannot be used with %s: %v", c.CertFile, err)
	}
}

func (st *state) validateNode(c *Config) {
	n := c.NodeName
	switch {
	case n == "":
		st.errorf("node_name", "must not be empty")
	case len(n) > 253:
		st.errorf("node_name", "longer than 253 characters")
	case strings.IndexFunc(n, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0:
		st.errorf("node_name", "%q: only printable ASCII without spaces is allowed (it is stored in lease metadata)", n)
	}
}

// listenAddr checks a host:port listen address.
func (st *state) listenAddr(key, v string) (host, port string, ok bool) {
	if st.failed[key] {
		return "", "", false
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		hint := ""
		if strings.Count(v, ":") > 1 && !strings.HasPrefix(v, "[") {
			hint = `; an IPv6 host needs brackets: "[::1]:80"`
		}
		st.errorf(key, "%q is not host:port (%v)%s", v, addrErr(err), hint)
		return "", "", false
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		st.errorf(key, "%q: port must be a number in 0..65535", v)
		return "", "", false
	}
	return host, port, true
}

func addrErr(err error) string {
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return ae.Err
	}
	return err.Error()
}

func (st *state) validateListen(c *Config) {
	if c.Listen.HTTP == "" && c.Listen.HTTPS == "" {
		st.errorf("listen.http", "listen.http and listen.https are both empty: at least one listener is needed")
	}
	type listener struct{ key, host, port string }
	var ls []listener
	for _, l := range []struct{ key, v string }{
		{"listen.http", c.Listen.HTTP},
		{"listen.https", c.Listen.HTTPS},
		{"probe.listen", c.Probe.Listen},
		{"admin.listen", c.Admin.Listen},
		{"peer.listen", c.Peer.Listen},
	} {
		if l.v == "" {
			if l.key == "probe.listen" || l.key == "admin.listen" {
				st.errorf(l.key, "must not be empty")
			}
			continue
		}
		host, port, ok := st.listenAddr(l.key, l.v)
		if !ok {
			continue
		}
		for _, o := range ls {
			if port == o.port && port != "0" && (host == o.host || isUnspecified(host) || isUnspecified(o.host)) {
				st.errorf(l.key, "%q uses the same port as %s (%q)", l.v, o.key, net.JoinHostPort(o.host, o.port))
			}
		}
		ls = append(ls, listener{l.key, host, port})
	}
}

// httpURL checks an absolute http(s) URL. Secret URLs are never echoed.
func (st *state) httpURL(key, v string, secret bool) (*url.URL, bool) {
	show := strconv.Quote(v)
	if secret {
		show = "the value (not shown: it may hold a secret)"
	}
	u, err := url.Parse(v)
	if err != nil {
		if secret {
			st.errorf(key, "is not a valid URL")
		} else {
			st.errorf(key, "%s is not a valid URL: %v", show, urlErr(err))
		}
		return nil, false
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		st.errorf(key, "%s must be an absolute http:// or https:// URL", show)
		return nil, false
	}
	if u.Host == "" || u.Hostname() == "" {
		st.errorf(key, "%s has no host", show)
		return nil, false
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			st.errorf(key, "%s: port must be in 1..65535", show)
			return nil, false
		}
	}
	return u, true
}

func urlErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// isToken reports whether s is an HTTP token (header name, method).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

func hasCtl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0
}

func (st *state) validateBackend(c *Config) {
	b := c.Backend
	st.httpURL("backend.url", b.URL, false)
	if b.FencingHeader != "" && !isToken(b.FencingHeader) {
		st.errorf("backend.fencing_header", "%q is not a valid HTTP header name", b.FencingHeader)
	}
	st.identifyHeader(b)
	st.positive("backend.dial_timeout", b.DialTimeout)
	st.nonNegative("backend.response_header_timeout", b.ResponseHeaderTimeout)
	if b.MaxIdleConns < 0 {
		st.errorf("backend.max_idle_conns", "must not be negative (got %d)", b.MaxIdleConns)
	}
}

func (st *state) validateProbe(c *Config) {
	p := &c.Probe
	if !strings.HasPrefix(p.Path, "/") || hasCtl(p.Path) || strings.ContainsAny(p.Path, " ?#") {
		st.errorf("probe.path", "%q must be a path starting with \"/\" (no spaces, query or fragment)", p.Path)
	}
	st.oneOf("probe.mode", p.Mode, probeModes)
	for i, a := range p.Allow {
		key := "probe.allow[" + strconv.Itoa(i) + "]"
		pre, err := parseAllow(a)
		if err != nil {
			st.errorf(key, "%q is not a CIDR (\"168.63.129.16/32\") or an IP address", a)
			continue
		}
		p.Allow[i] = pre.String()
	}
	if p.Mode == "tcp" && len(p.Allow) > 0 {
		st.errorf("probe.allow", "cannot work with probe.mode = \"tcp\": a TCP probe counts the handshake, which completes before the source can be checked; restrict the probe port with a firewall (NSG rule from AzureLoadBalancer) or use mode = \"http\"")
	}
	if p.LBInterval < Duration(time.Second) {
		st.errorf("probe.lb_interval", "must be at least 1s (got %s); Azure's minimum is 5s", p.LBInterval)
	}
	if p.LBThreshold < 1 {
		st.errorf("probe.lb_threshold", "must be at least 1 (got %d)", p.LBThreshold)
	}
}

// parseAllow accepts a CIDR or a plain IP (as /32 or /128).
func parseAllow(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (st *state) validateAdmin(c *Config) {
	if c.Admin.TokenFile != "" {
		st.fileExists("admin.token_file", c.Admin.TokenFile)
	}
	if c.Admin.Pprof && c.Admin.TokenFile == "" {
		st.errorf("admin.pprof", "true needs admin.token_file: profiles are served only to requests with the admin token")
	}
}

func (st *state) validateLease(c *Config) {
	l := c.Lease
	okBackend := st.oneOf("lease.backend", l.Backend, leaseBackends)

	// The timing contract, for every backend; the storage's own limits on
	// the lease duration, for the backend that has them.
	L, ri, D, R := l.Duration, l.RenewInterval, l.RenewDeadline, l.RetryInterval
	okL := st.positive("lease.duration", L)
	if okL && l.Backend == "azblob" {
		switch {
		case L.D() < azure.MinLeaseDuration || L.D() > azure.MaxLeaseDuration:
			st.errorf("lease.duration", "%s is outside the allowed range %ds..%ds (Azure blob lease limits)",
				L, azure.MinLeaseDuration/time.Second, azure.MaxLeaseDuration/time.Second)
			okL = false
		case L.D()%time.Second != 0:
			st.errorf("lease.duration", "%s: Azure blob leases last a whole number of seconds", L)
		}
	}
	if st.positive("lease.renew_interval", ri) && ri >= D {
		st.errorf("lease.renew_interval", "must be less than lease.renew_deadline (%s >= %s)", ri, D)
	}
	switch {
	case okL && D >= L:
		st.errorf("lease.renew_deadline", "must be less than lease.duration (%s >= %s): the active must stop before the lease can pass to another node", D, L)
	case ri > 0 && ri < D && 2*ri > D:
		st.errorf("lease.renew_deadline", "leaves room for fewer than two renew attempts: 2 × lease.renew_interval (%s) > lease.renew_deadline (%s)", 2*ri, D)
	}
	if st.positive("lease.retry_interval", R) && okL && R >= L {
		st.errorf("lease.retry_interval", "must be less than lease.duration (%s >= %s)", R, L)
	}
	st.nonNegative("lease.candidacy_backoff", l.CandidacyBackoff)
	st.nonNegative("lease.clock_jump", l.ClockJump)

	if !okBackend {
		return
	}
	switch l.Backend {
	case "file":
		if l.File.Path == "" {
			st.errorf("lease.file.path", "must not be empty")
		}
	case "azblob":
		st.validateAzBlob(c)
	}
}

// missingAccount is the error for an azblob lease without a storage account.
const missingAccount = `no storage account configured for the azblob lease: ` +
	`set [lease.azblob] account_url = "https://ACCOUNT.blob.core.windows.net" (or the emulator's URL), ` +
	`or set lease.backend = "file" for processes on ONE host only (a file lease cannot coordinate two machines)`

func (st *state) validateAzBlob(c *Config) {
	az := c.Lease.AzBlob
	const p = "lease.azblob."
	authOK := st.oneOf(p+"auth", az.Auth, authModes)

	switch {
	case az.AccountURL == "" && az.Auth == "connection-string":
		// The connection string names the account and its endpoint.
	case az.AccountURL == "":
		st.errorf(p+"account_url", "%s", missingAccount)
	default:
		u, ok := st.httpURL(p+"account_url", az.AccountURL, true)
		if ok && (u.RawQuery != "" || u.User != nil || u.Fragment != "") {
			st.errorf(p+"account_url", "must not contain a query string or user info: "+
				"that looks like a SAS token or credentials; put the token in sas_token_file or sas_token_env with auth = \"sas\"")
		}
	}

	if azure.CheckContainerName(az.Container) != nil {
		st.errorf(p+"container", "%q is not a valid container name (3-63 characters: lowercase letters, digits, single hyphens; starts and ends with a letter or digit)", az.Container)
	}
	if az.Blob == "" || len(az.Blob) > 1024 || hasCtl(az.Blob) || strings.HasSuffix(az.Blob, "/") {
		st.errorf(p+"blob", "%q is not a valid blob name (1-1024 characters, no control characters, not ending in \"/\")", az.Blob)
	}

	if cl := c.Lease.AzBlob.CallTimeout; st.positive(p+"call_timeout", cl) && cl >= c.Lease.RenewInterval {
		st.errorf(p+"call_timeout", "must be less than lease.renew_interval (%s >= %s): a renew attempt must end before the next one is due", cl, c.Lease.RenewInterval)
	}

	if !authOK {
		return
	}
	// Each auth needs its own secret, from exactly one source, and no other.
	type source struct{ env, file, envKey, fileKey, auth string }
	sources := []source{
		{az.ConnectionStringEnv, az.ConnectionStringFile, "connection_string_env", "connection_string_file", "connection-string"},
		{az.AccountKeyEnv, az.AccountKeyFile, "account_key_env", "account_key_file", "shared-key"},
		{az.SASTokenEnv, az.SASTokenFile, "sas_token_env", "sas_token_file", "sas"},
	}
	for _, s := range sources {
		if s.auth != az.Auth {
			for _, k := range []struct{ v, key string }{{s.env, s.envKey}, {s.file, s.fileKey}} {
				if k.v != "" {
					st.errorf(p+k.key, "is only used with auth = %q (auth is %q)", s.auth, az.Auth)
				}
			}
			continue
		}
		switch {
		case s.env == "" && s.file == "":
			st.errorf(p+s.fileKey, "auth = %q needs its secret: set %s%s (a file) or %s%s (an environment variable name)", az.Auth, p, s.fileKey, p, s.envKey)
		case s.env != "" && s.file != "":
			st.errorf(p+s.envKey, "set only one of %s%s and %s%s", p, s.envKey, p, s.fileKey)
		case s.file != "":
			st.fileExists(p+s.fileKey, s.file)
		case !isEnvName(s.env):
			st.errorf(p+s.envKey, "%q is not an environment variable name", s.env)
		}
	}
	if az.Auth == "shared-key" && az.AccountName == "" {
		st.errorf(p+"account_name", "auth = \"shared-key\" needs the account name and it cannot be read from account_url: set lease.azblob.account_name")
	}
	if az.AccountName != "" && az.Auth != "shared-key" {
		st.errorf(p+"account_name", "is only used with auth = \"shared-key\" (auth is %q)", az.Auth)
	}
	if az.ClientID != "" && az.Auth != "managed-identity" && az.Auth != "default" {
		st.errorf(p+"client_id", "is only used with auth = \"managed-identity\" or \"default\" (auth is %q)", az.Auth)
	}
	st.accountURLWithConnectionString(c)
}

func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r < 0x80 && unicode.IsLetter(r) || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func (st *state) validateHealth(c *Config) {
	h := &c.Health
	if h.History < 1 {
		st.errorf("health.history", "must be at least 1 (got %d)", h.History)
	}
	pa := h.Passive
	switch {
	case pa.ErrorRate < 0 || pa.ErrorRate > 1 || pa.ErrorRate != pa.ErrorRate:
		st.errorf("health.passive.error_rate", "must be in 0..1 (0 turns it off), got %v", pa.ErrorRate)
	case pa.ErrorRate > 0:
		st.positive("health.passive.window", pa.Window)
		if pa.MinRequests < 1 {
			st.errorf("health.passive.min_requests", "must be at least 1 when health.passive.error_rate is set (got %d)", pa.MinRequests)
		}
	}
	st.nonNegative("health.passive.window", pa.Window)
	if pa.MinRequests < 0 {
		st.errorf("health.passive.min_requests", "must not be negative (got %d)", pa.MinRequests)
	}
	if pa.MaxInFlight < 0 {
		st.errorf("health.passive.max_in_flight", "must not be negative (0 turns it off), got %d", pa.MaxInFlight)
	}
	st.nonNegative("health.passive.cooldown", pa.Cooldown)
	st.validatePassivePaths(pa.Paths)

	names := map[string]int{}
	for i := range h.Checks {
		st.validateCheck(c, i, names)
	}
}

func (st *state) validateCheck(c *Config, i int, names map[string]int) {
	ch := &c.Health.Checks[i]
	base := "health.check[" + strconv.Itoa(i) + "]"
	errf := func(k, format string, args ...any) {
		st.errorf(base+"."+k, format, args...)
	}

	switch {
	case ch.Name == "":
		errf("name", "every health check needs a name")
	case hasCtl(ch.Name) || len(ch.Name) > 128:
		errf("name", "%q: at most 128 characters, no control characters", ch.Name)
	default:
		if j, dup := names[ch.Name]; dup {
			errf("name", "the name is also used by health.check[%d]", j)
		} else {
			names[ch.Name] = i
		}
	}
	typeOK := false
	if !contains(checkTypes, ch.Type) {
		errf("type", "%q is not one of %s", ch.Type, quoteList(checkTypes))
	} else {
		typeOK = true
	}
	if st.positive(base+".interval", ch.Interval) && st.positive(base+".timeout", ch.Timeout) && ch.Timeout > ch.Interval {
		errf("timeout", "must not exceed the interval (%s > %s)", ch.Timeout, ch.Interval)
	}
	if ch.Rise < 1 {
		errf("rise", "must be at least 1 (got %d)", ch.Rise)
	}
	if ch.Fall < 1 {
		errf("fall", "must be at least 1 (got %d)", ch.Fall)
	}
	if !typeOK {
		return
	}

	// Keys that belong to another check type are mistakes, not no-ops.
	type field struct {
		key  string
		set  bool
		kind string
	}
	for _, f := range []field{
		{"url", ch.URL != "", "http"},
		{"method", ch.Method != "", "http"},
		{"headers", len(ch.Headers) > 0, "http"},
		{"host", ch.Host != "", "http"},
		{"expect_status", len(ch.ExpectStatus) > 0, "http"},
		{"body_regex", ch.BodyRegex != "", "http"},
		{"tls_ca_file", ch.TLSCAFile != "", "http"},
		{"tls_skip_verify", ch.TLSSkipVerify, "http"},
		{"address", ch.Address != "", "tcp"},
		{"command", len(ch.Command) > 0, "exec"},
	} {
		if f.set && f.kind != ch.Type {
			errf(f.key, "is only used by %s checks (this one has type %q)", f.kind, ch.Type)
		}
	}

	switch ch.Type {
	case "http":
		if ch.URL == c.Backend.URL && st.failed["backend.url"] {
			// Defaulted from backend.url, which is reported already.
		} else if u, ok := st.httpURL(base+".url", ch.URL, false); ok && u.User != nil {
			errf("url", "must not contain user info; use headers")
		}
		if !isToken(ch.Method) {
			errf("method", "%q is not an HTTP method", ch.Method)
		}
		for name, v := range ch.Headers {
			if !isToken(name) {
				errf("headers", "%q is not a valid header name", name)
			} else if hasCtl(v) {
				errf("headers", "the value of %q contains control characters", name)
			}
		}
		if hasCtl(ch.Host) || strings.ContainsAny(ch.Host, " /") {
			errf("host", "%q is not a valid host", ch.Host)
		}
		if st.checkHas(i, "expect_status") && len(ch.ExpectStatus) == 0 {
			errf("expect_status", "must list at least one status (200, \"2xx\" or \"200-299\")")
		}
		if ch.BodyRegex != "" {
			if _, err := regexp.Compile(ch.BodyRegex); err != nil {
				errf("body_regex", "%v", err)
			}
		}
		if ch.TLSCAFile != "" {
			st.fileExists(base+".tls_ca_file", ch.TLSCAFile)
		}
		if ch.MaxBodyBytes < 1 {
			errf("max_body_bytes", "must be at least 1 (got %d)", ch.MaxBodyBytes)
		}
	case "tcp":
		key := base + ".address"
		if ch.Address == "" {
			errf("address", "a tcp check needs an address (host:port)")
		} else if _, port, ok := st.listenAddr(key, ch.Address); ok && port == "0" {
			errf("address", "%q: port 0 cannot be dialled", ch.Address)
		}
	case "exec":
		switch {
		case len(ch.Command) == 0 || ch.Command[0] == "":
			errf("command", "an exec check needs a command (argv list, e.g. [\"/usr/local/bin/check\", \"--quick\"])")
		default:
			if _, err := st.lookPath(ch.Command[0]); err != nil {
				var ee *exec.Error
				if errors.As(err, &ee) {
					err = ee.Err
				}
				errf("command", "%q is not an executable on this host: %v", ch.Command[0], err)
			}
		}
	}
}

func contains(l []string, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}

func (st *state) validateDrain(c *Config) {
	d := c.Drain
	st.oneOf("drain.standby", d.Standby, standbyModes)
	st.nonNegative("drain.timeout", d.Timeout)
	st.nonNegative("drain.hold", d.Hold)
	st.nonNegative("drain.exit_delay", d.ExitDelay)

	const key = "drain.advertise_url"
	if st.failed[key] {
		return
	}
	if d.AdvertiseURL == "" {
		if d.Standby == "forward" && !st.failed["listen.http"] {
			st.errorf(key, "cannot be derived because listen.http is empty: set the URL at which peers forward requests to this node, or set drain.standby = \"reject\"")
		}
		return
	}
	u, ok := st.httpURL(key, d.AdvertiseURL, false)
	if !ok {
		return
	}
	switch {
	case isUnspecified(u.Hostname()):
		st.errorf(key, "%q: peers cannot reach an unspecified address; use the node's IP, e.g. \"http://{{ GetPrivateIP }}:80\"", d.AdvertiseURL)
	case u.Port() == "0" && st.advertiseDerived:
		st.errorf(key, "derived from listen.http with port 0; set drain.advertise_url")
	case u.Port() == "0":
		st.errorf(key, "%q: port 0 cannot be dialled", d.AdvertiseURL)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		st.errorf(key, "must be a plain base URL (no user info, query or fragment)")
	}
}

func (st *state) validateTLS(c *Config) {
	t := c.TLS
	st.oneOf("tls.min_version", t.MinVersion, tlsVersions)
	st.nonNegative("tls.hsts", t.HSTS)
	if t.RedirectHTTP != nil && *t.RedirectHTTP && (c.Listen.HTTPS == "" || c.Listen.HTTP == "") {
		st.errorf("tls.redirect_http", "needs both listen.http and listen.https")
	}
	if t.HSTS > 0 && c.Listen.HTTPS == "" {
		st.errorf("tls.hsts", "needs listen.https")
	}
	a := t.ACME
	hasCerts, hasACME := len(t.Certificates) > 0, len(a.Domains) > 0
	if c.Listen.HTTPS != "" && !hasCerts && !hasACME {
		st.errorf("listen.https", "needs certificates: add [[tls.certificate]] cert_file/key_file, or [tls.acme] domains")
	}
	if c.Listen.HTTPS == "" && (hasCerts || hasACME) {
		key := "tls.certificate"
		if !hasCerts {
			key = "tls.acme.domains"
		}
		st.errorf(key, "certificates are configured but listen.https is empty, so they would never be used")
	}
	for i, cert := range t.Certificates {
		base := "tls.certificate[" + strconv.Itoa(i) + "]"
		if cert.CertFile == "" {
			st.errorf(base+".cert_file", "must be set")
		} else {
			st.fileExists(base+".cert_file", cert.CertFile)
		}
		if cert.KeyFile == "" {
			st.errorf(base+".key_file", "must be set")
		} else {
			st.fileExists(base+".key_file", cert.KeyFile)
		}
		st.keyPair(base, cert)
	}

	seen := map[string]bool{}
	for i, d := range a.Domains {
		key := "tls.acme.domains[" + strconv.Itoa(i) + "]"
		switch {
		case strings.HasPrefix(d, "*."):
			st.errorf(key, "%q: wildcard names need the DNS-01 challenge, which baton does not do", d)
		case !isDomain(d):
			st.errorf(key, "%q is not a domain name or IP address", d)
		case seen[strings.ToLower(d)]:
			st.errorf(key, "%q is listed twice", d)
		}
		seen[strings.ToLower(d)] = true
	}
	if !hasACME {
		return
	}
	if a.Email != "" && (!strings.Contains(a.Email, "@") || hasCtl(a.Email) || strings.ContainsAny(a.Email, " ")) {
		st.errorf("tls.acme.email", "%q is not an e-mail address", a.Email)
	}
	if u, ok := st.httpURL("tls.acme.ca", a.CA, false); ok && u.Scheme != "https" {
		st.errorf("tls.acme.ca", "%q: an ACME directory is served over https", a.CA)
	}
	if a.CARoot != "" {
		st.fileExists("tls.acme.ca_root", a.CARoot)
	}
	if len(a.Challenges) == 0 {
		st.errorf("tls.acme.challenges", "must name at least one of %q, %q", ChallengeHTTP01, ChallengeTLSALPN01)
	}
	for i, ch := range a.Challenges {
		key := "tls.acme.challenges[" + strconv.Itoa(i) + "]"
		switch {
		case ch != ChallengeHTTP01 && ch != ChallengeTLSALPN01:
			st.errorf(key, "%q: want %q or %q (DNS-01 is not supported)", ch, ChallengeHTTP01, ChallengeTLSALPN01)
		case slices.Index(a.Challenges, ch) != i:
			st.errorf(key, "%q is listed twice", ch)
		case ch == ChallengeHTTP01 && c.Listen.HTTP == "":
			st.errorf(key, "%q is answered on listen.http, which is off", ch)
		}
	}
	if st.oneOf("tls.acme.storage", a.Storage, acmeStorages) {
		switch a.Storage {
		case "file":
			if a.StoragePath == "" {
				st.errorf("tls.acme.storage_path", "must not be empty")
			}
		case "azblob":
			if c.Lease.Backend != "azblob" {
				st.errorf("tls.acme.storage", "\"azblob\" uses the [lease.azblob] account, but lease.backend is %q", c.Lease.Backend)
			}
			if hasCtl(a.StoragePrefix) {
				st.errorf("tls.acme.storage_prefix", "must not contain control characters")
			}
		}
	}
}

func isDomain(d string) bool {
	if _, err := netip.ParseAddr(d); err == nil {
		return true
	}
	if d == "" || len(d) > 253 {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func (st *state) validateLog(c *Config) {
	st.oneOf("log.level", c.Log.Level, logLevels)
	st.oneOf("log.format", c.Log.Format, logFormats)
	if hasCtl(c.Log.File) {
		st.errorf("log.file", "must not contain control characters")
	}
}
