package config

import (
	"net"
	"path/filepath"
	"strconv"
)

// validatePeer checks [peer]: a link needs a listen address, at least one
// peer that is not this node, and a shared secret from exactly one source.
func (st *state) validatePeer(c *Config) {
	p := c.Peer
	if !filepath.IsAbs(c.Lease.StateDir) {
		st.errorf("lease.state_dir", "%q must be an absolute path", c.Lease.StateDir)
	}
	st.positive("peer.timeout", p.Timeout)
	if c.Lease.Failsafe && (p.Listen == "" || len(p.Peers) == 0) {
		st.errorf("lease.failsafe", "true needs the peer link: set [peer] listen, peers (every other node of this lease) and a secret; without peers nobody can promise to stand by")
	}
	if p.Listen == "" {
		for _, k := range []struct {
			set bool
			key string
		}{
			{len(p.Peers) > 0, "peer.peers"}, {p.SecretFile != "", "peer.secret_file"}, {p.SecretEnv != "", "peer.secret_env"},
		} {
			if k.set {
				st.errorf(k.key, "is set but peer.listen is empty: set peer.listen (e.g. \"{{ GetPrivateIP }}:8083\") to enable the peer link, or remove [peer]")
				return
			}
		}
		return
	}
	host, port, ok := st.listenAddr("peer.listen", p.Listen)
	if ok && port == "0" {
		st.errorf("peer.listen", "%q: peers must know the port; port 0 picks a random one", p.Listen)
	}
	switch {
	case p.SecretFile == "" && p.SecretEnv == "":
		st.errorf("peer.secret_file", "the peer link needs a shared secret: set peer.secret_file (a file) or peer.secret_env (an environment variable name), the same on every node")
	case p.SecretFile != "" && p.SecretEnv != "":
		st.errorf("peer.secret_env", "set only one of peer.secret_env and peer.secret_file")
	case p.SecretFile != "":
		st.fileExists("peer.secret_file", p.SecretFile)
	case !isEnvName(p.SecretEnv):
		st.errorf("peer.secret_env", "%q is not an environment variable name", p.SecretEnv)
	}
	if len(p.Peers) == 0 {
		st.errorf("peer.peers", "is empty: list the other nodes' peer addresses, e.g. [\"10.0.0.5:8083\"]")
	}
	seen := map[string]bool{}
	for i, a := range p.Peers {
		key := "peer.peers[" + strconv.Itoa(i) + "]"
		ph, pp, ok2 := st.listenAddr(key, a)
		if !ok2 {
			continue
		}
		switch {
		case ph == "" || isUnspecified(ph):
			st.errorf(key, "%q: a peer address needs a host", a)
		case pp == "0":
			st.errorf(key, "%q: port 0 cannot be dialled", a)
		case ok && pp == port && (ph == host || isLoopback(ph) && isUnspecified(host)):
			st.errorf(key, "%q is this node's own peer.listen; list the other nodes only", a)
		case seen[net.JoinHostPort(ph, pp)]:
			st.errorf(key, "%q is listed twice", a)
		}
		seen[net.JoinHostPort(ph, pp)] = true
	}
}
