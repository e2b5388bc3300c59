//go:build unix

package proxy

import (
	"net"
	"syscall"
)

// idleProbe looks at an idle connection's socket without reading from it
// (recv with MSG_PEEK): one system call, no allocation.
type idleProbe struct {
	rc      syscall.RawConn // nil: cannot look
	fn      func(fd uintptr)
	b       [1]byte
	nothing bool
}

func newIdleProbe(c net.Conn) *idleProbe {
	if tc, ok := c.(*trackedConn); ok {
		c = tc.Conn
	}
	p := &idleProbe{}
	if sc, ok := c.(syscall.Conn); ok {
		p.rc, _ = sc.SyscallConn()
	}
	p.fn = p.peek
	return p
}

func (p *idleProbe) peek(fd uintptr) {
	n, _, err := syscall.Recvfrom(int(fd), p.b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	p.nothing = n < 0 && (err == syscall.EAGAIN || err == syscall.EWOULDBLOCK)
}

// clean reports whether the idle connection has nothing to read: no
// unsolicited bytes and no EOF from the backend. It looks through
// RawConn.Control, not Read: a read deadline left from the last answer
// (readAnswer leaves it when the whole answer was read at once) does not
// apply to a look.
func (p *idleProbe) clean() bool {
	if p.rc == nil {
		return true
	}
	p.nothing = false
	return p.rc.Control(p.fn) == nil && p.nothing
}
