package proxy

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"sync"
)

// connSet tracks live connections so a drain deadline can close them.
type connSet struct {
	mu sync.Mutex
	m  map[*trackedConn]struct{}
}

type trackedConn struct {
	net.Conn
	set  *connSet
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.set.remove(c) })
	return c.Conn.Close()
}

func (s *connSet) add(c net.Conn) net.Conn {
	tc := &trackedConn{Conn: c, set: s}
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[*trackedConn]struct{})
	}
	s.m[tc] = struct{}{}
	s.mu.Unlock()
	return tc
}

func (s *connSet) remove(c *trackedConn) {
	s.mu.Lock()
	delete(s.m, c)
	s.mu.Unlock()
}

// closeAll closes every tracked connection and returns how many there were.
func (s *connSet) closeAll() int {
	s.mu.Lock()
	conns := make([]*trackedConn, 0, len(s.m))
	for c := range s.m {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	return len(conns)
}

func (s *connSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// track wraps a dial function so that every connection it makes is tracked.
func (s *connSet) track(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return s.add(c), nil
	}
}

// hijackTracker records the client connection of an upgraded request
// (WebSocket), which http.Server.Shutdown does not see.
type hijackTracker struct {
	http.ResponseWriter
	set *connSet
}

func (h *hijackTracker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if ex := exchangeOf(h.ResponseWriter); ex != nil && ex.status == 0 {
		// The 101 goes out on the hijacked connection, past the
		// exchange: record it, or the upgrade would count as 499.
		ex.status = http.StatusSwitchingProtocols
	}
	return h.set.add(c), brw, nil
}

func (h *hijackTracker) Unwrap() http.ResponseWriter { return h.ResponseWriter }
