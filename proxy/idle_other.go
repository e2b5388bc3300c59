//go:build !unix

package proxy

import (
	"errors"
	"net"
	"os"
	"time"
)

// idleClean reports whether the idle connection has nothing to read: no
// unsolicited bytes and no EOF from the backend. Without MSG_PEEK it tries
// a read that times out at once; a connection that had something to read
// is closed by the caller anyway.
func idleClean(c net.Conn) bool {
	var b [1]byte
	c.SetReadDeadline(time.Now())
	_, err := c.Read(b[:])
	c.SetReadDeadline(time.Time{})
	return errors.Is(err, os.ErrDeadlineExceeded)
}
