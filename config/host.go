package config

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/batonproxy/baton/internal/azure"
	"github.com/batonproxy/baton/internal/fsutil"
)

// HostConflict is something two configurations would both take if they ran
// on one host (several pairs on the same VMs): a listening port, a lease, an
// instance lock. `baton check-config` with several files reports them.
type HostConflict struct {
	A, B KeyRef // where each file sets it
	// Msg says what they share, e.g. "both listen on port 80".
	Msg string
}

// KeyRef is a key and its value in one configuration file.
type KeyRef struct {
	File    string
	Line    int    // 0: not known
	Key     string // dotted key, e.g. "probe.listen"
	Value   string // as shown: quoted for a plain value
	Default bool   // the file does not write the key: the value is the default
}

func (r KeyRef) String() string {
	var b strings.Builder
	switch {
	case r.File != "" && r.Line > 0:
		b.WriteString(r.File + ":" + strconv.Itoa(r.Line) + ": ")
	case r.File != "":
		b.WriteString(r.File + ": ")
	}
	b.WriteString(r.Key + " = " + r.Value)
	if r.Default {
		b.WriteString(" (default)")
	}
	return b.String()
}

func (c HostConflict) Error() string { return c.A.String() + " and " + c.B.String() + ": " + c.Msg }

// HostCheck finds HostConflicts. Its zero value resolves host names with the
// system's resolver and reads connection strings with ReadSecret.
type HostCheck struct {
	// Resolve returns the addresses a listen address's host name stands
	// for (an IP literal is never passed).
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	// Secret reads a secret the way the node does (ReadSecret): only for
	// an azblob lease given by a connection string without account_url,
	// whose storage account is named inside it.
	Secret func(envName, file string) (string, error)
}

// HostConflicts is HostCheck{}.Conflicts.
func HostConflicts(cfgs []*Config) []HostConflict { return HostCheck{}.Conflicts(cfgs) }

// Conflicts compares every two of cfgs (loaded configurations meant for one
// host) and returns what they would share, in a stable order:
//
//   - a listening port: listen.http, listen.https, probe.listen,
//     admin.listen and peer.listen of one file against all five of the
//     other, by resolved address and port. An unspecified host ("", 0.0.0.0,
//     ::) takes the port on every address (Go listens dual-stack), so it
//     collides with any address on that port. Port 0 never collides. A host
//     name collides when any of its addresses does (conservative: Go binds
//     only the first).
//   - a lease: the same lease file (absolute, cleaned, symbolic links in
//     its folder resolved), or the same blob (storage account, container,
//     blob name). Two nodes of one pair on one host cover no VM failure.
//   - an instance lock: the same node name and lease in the same
//     lease.state_dir (the lock and lease ID files are named after the node
//     and the lease, so configurations with different leases may share the
//     folder); the second `baton run` would be refused.
func (h HostCheck) Conflicts(cfgs []*Config) []HostConflict {
	if h.Resolve == nil {
		h.Resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	if h.Secret == nil {
		h.Secret = ReadSecret
	}
	hc := &hostCheck{HostCheck: h, resolved: map[string]resolved{}, lines: map[string]*locator{}}
	facts := make([]hostFacts, len(cfgs))
	for i, c := range cfgs {
		facts[i] = hc.facts(c)
	}
	var out []HostConflict
	for i := range facts {
		for j := i + 1; j < len(facts); j++ {
			out = append(out, conflicts(facts[i], facts[j])...)
		}
	}
	return out
}

type hostCheck struct {
	HostCheck
	resolved map[string]resolved
	lines    map[string]*locator // by file; nil when unreadable
}

type resolved struct {
	addrs []netip.Addr
	err   error
}

// hostFacts is what one configuration takes on its host.
type hostFacts struct {
	listeners []listener
	lease     KeyRef
	leaseID   string // the lease compared: "file:PATH" or "azblob:ACCOUNT/container/blob"
	lock      KeyRef // lease.state_dir
	lockID    string // state_dir, node name and lease as the instance lock names them
	node      string
}

type listener struct {
	ref      KeyRef
	port     string
	wildcard bool         // every address
	addrs    []netip.Addr // the host's addresses (IPv4-mapped unmapped)
	host     string       // a host name that could not be resolved, lowercased
}

func (hc *hostCheck) facts(c *Config) hostFacts {
	f := hostFacts{node: c.NodeName}
	for _, l := range []struct{ key, v string }{
		{"listen.http", c.Listen.HTTP},
		{"listen.https", c.Listen.HTTPS},
		{"probe.listen", c.Probe.Listen},
		{"admin.listen", c.Admin.Listen},
		{"peer.listen", c.Peer.Listen},
	} {
		if l.v == "" {
			continue
		}
		host, port, err := net.SplitHostPort(l.v)
		if err != nil || port == "0" {
			continue // Load refuses the first; the second is any free port
		}
		ln := listener{ref: hc.ref(c, l.key, strconv.Quote(l.v)), port: port}
		switch a, err := netip.ParseAddr(host); {
		case host == "":
			ln.wildcard = true
		case err == nil:
			a = a.Unmap()
			ln.wildcard = a.IsUnspecified()
			ln.addrs = []netip.Addr{a}
		default:
			r := hc.resolve(host)
			if r.err != nil {
				ln.host = strings.ToLower(host)
			}
			for _, a := range r.addrs {
				a = a.Unmap()
				ln.wildcard = ln.wildcard || a.IsUnspecified()
				ln.addrs = append(ln.addrs, a)
			}
		}
		f.listeners = append(f.listeners, ln)
	}

	switch c.Lease.Backend {
	case "file":
		p := canonicalPath(c.Lease.File.Path)
		f.leaseID = "file:" + p
		f.lease = hc.ref(c, "lease.file.path", strconv.Quote(c.Lease.File.Path))
		if runtime.GOOS == "windows" {
			f.leaseID = strings.ToLower(f.leaseID)
		}
	default:
		az := c.Lease.AzBlob
		account := hc.account(az)
		// Container names are lowercase in Azure; blob names are case
		// sensitive.
		f.leaseID = "azblob:" + account + "/" + strings.ToLower(az.Container) + "/" + az.Blob
		f.lease = hc.ref(c, "lease.azblob", account+" container "+strconv.Quote(az.Container)+" blob "+strconv.Quote(az.Blob))
		f.lease.Default = false
	}
	dir := filepath.Clean(c.Lease.StateDir)
	f.lock = hc.ref(c, "lease.state_dir", strconv.Quote(c.Lease.StateDir))
	f.lockID = dir + "\x00" + c.NodeName + "\x00" + lockTarget(c)
	if runtime.GOOS == "windows" {
		f.lockID = strings.ToLower(dir) + "\x00" + c.NodeName + "\x00" + lockTarget(c)
	}
	return f
}

// lockTarget is the lease as the instance lock's file name is derived from
// it (cmd/baton/internal/node leaseTarget): the file lease's absolute path,
// the blob's account URL, container and name as written.
func lockTarget(c *Config) string {
	if c.Lease.Backend == "file" {
		p, err := filepath.Abs(c.Lease.File.Path)
		if err != nil {
			p = c.Lease.File.Path
		}
		return "file:" + p
	}
	a := c.Lease.AzBlob
	return "azblob:" + a.AccountURL + "/" + a.Container + "/" + a.Blob
}

func conflicts(a, b hostFacts) []HostConflict {
	var out []HostConflict
	for _, la := range a.listeners {
		for _, lb := range b.listeners {
			if msg, ok := sameSocket(la, lb); ok {
				out = append(out, HostConflict{A: la.ref, B: lb.ref, Msg: msg})
			}
		}
	}
	if a.leaseID == b.leaseID {
		msg := "both compete for the same lease: two nodes of one pair on one host cover no VM failure (only the tests and the demo run a pair on one host)"
		if a.node == b.node {
			msg = fmt.Sprintf("both compete for the same lease as the same node %q", a.node)
		}
		out = append(out, HostConflict{A: a.lease, B: b.lease, Msg: msg})
	}
	if a.lockID == b.lockID {
		out = append(out, HostConflict{A: a.lock, B: b.lock, Msg: fmt.Sprintf(
			"both would take the same instance lock (node %q, the same lease, the same folder): the second `baton run` is refused", a.node)})
	}
	return out
}

// sameSocket reports whether two listeners would take the same port, and
// how.
func sameSocket(a, b listener) (string, bool) {
	if a.port != b.port {
		return "", false
	}
	switch {
	case a.wildcard:
		return fmt.Sprintf("both listen on port %s (%s listens on every address)", a.port, a.ref.Value), true
	case b.wildcard:
		return fmt.Sprintf("both listen on port %s (%s listens on every address)", b.port, b.ref.Value), true
	case a.host != "" && a.host == b.host:
		return fmt.Sprintf("both listen on %s", net.JoinHostPort(a.host, a.port)), true
	}
	for _, x := range a.addrs {
		for _, y := range b.addrs {
			if x == y {
				return fmt.Sprintf("both listen on %s", net.JoinHostPort(x.String(), a.port)), true
			}
		}
	}
	return "", false
}

func (hc *hostCheck) resolve(host string) resolved {
	key := strings.ToLower(host)
	if r, ok := hc.resolved[key]; ok {
		return r
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	addrs, err := hc.Resolve(ctx, host)
	r := resolved{addrs: addrs, err: err}
	hc.resolved[key] = r
	return r
}

// account names the storage account of an azblob lease: its endpoint URL,
// normalised, from account_url or else from the connection string. A
// connection string that cannot be read stands for itself (its source).
func (hc *hostCheck) account(az AzBlobLease) string {
	if az.AccountURL != "" {
		return normalizeAccountURL(az.AccountURL)
	}
	if cs, err := hc.Secret(az.ConnectionStringEnv, az.ConnectionStringFile); err == nil {
		if u, err := azure.ConnectionStringEndpoint(cs); err == nil {
			return u
		}
	}
	if az.ConnectionStringFile != "" {
		return "(the connection string in " + canonicalPath(az.ConnectionStringFile) + ")"
	}
	return "(the connection string in $" + az.ConnectionStringEnv + ")"
}

// normalizeAccountURL is azure.CanonicalEndpoint (scheme and host in lower
// case, no default port, no trailing slash), or the URL as written when it
// cannot be parsed (Load has refused those).
func normalizeAccountURL(s string) string {
	if c, err := azure.CanonicalEndpoint(s); err == nil {
		return c
	}
	return strings.TrimRight(s, "/")
}

// canonicalPath is p absolute and cleaned, with symbolic links resolved as
// far as the path exists.
func canonicalPath(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r
	}
	if d, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		return filepath.Join(d, filepath.Base(abs))
	}
	return abs
}

// ref describes key in c: its file, its line, whether the file writes it.
func (hc *hostCheck) ref(c *Config, key, value string) KeyRef {
	r := KeyRef{File: c.Path, Key: key, Value: value}
	loc := hc.locator(c.Path)
	if loc == nil {
		return r
	}
	r.Line = loc.line(key)
	_, written := loc.byKey[key] // built by line
	r.Default = !written
	return r
}

// locator maps the keys of the file at path to lines; nil when the file
// cannot be read again.
func (hc *hostCheck) locator(path string) *locator {
	if path == "" {
		return nil
	}
	if l, ok := hc.lines[path]; ok {
		return l
	}
	var l *locator
	if data, err := fsutil.ReadFileLimit(path, maxFileSize); err == nil {
		l = locate(data)
	}
	hc.lines[path] = l
	return l
}
