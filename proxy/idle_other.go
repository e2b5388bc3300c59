//go:build !unix

package proxy

import (
	"errors"
	"net"
	"os"
	"time"
)

// idleProbe looks at an idle connection: without MSG_PEEK it tries a read
// that times out at once (a connection that had something to read is
// closed by the caller anyway).
type idleProbe struct{ c net.Conn }

func newIdleProbe(c net.Conn) *idleProbe { return &idleProbe{c} }

// clean reports whether the idle connection has nothing to read: no
// unsolicited bytes and no EOF from the backend.
func (p *idleProbe) clean() bool {
	var b [1]byte
	p.c.SetReadDeadline(time.Now())
	_, err := p.c.Read(b[:])
	p.c.SetReadDeadline(time.Time{})
	return errors.Is(err, os.ErrDeadlineExceeded)
}
