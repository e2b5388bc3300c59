package healthcheck

import (
	"context"
	"net"
	"time"
)

type tcpChecker struct {
	address string
	dialer  net.Dialer
}

// NewTCP returns a check that passes when a TCP connection to address ("host:port") can be
// opened; the connection is closed at once. An invalid address fails at Check time.
func NewTCP(address string) Checker {
	return &tcpChecker{address: address}
}

func (c *tcpChecker) Type() string { return "tcp" }

// Check dials the address; a failure reads "dial 127.0.0.1:8080: connection refused".
func (c *tcpChecker) Check(ctx context.Context) (string, error) {
	start := time.Now()
	conn, err := c.dialer.DialContext(ctx, "tcp", c.address)
	if err != nil {
		return "", failf(err, "dial %s: %s", c.address, describeErr(ctx, start, err))
	}
	out := "connected to " + conn.RemoteAddr().String()
	_ = conn.Close() // nothing was written: a close error says nothing about the backend
	return out, nil
}
