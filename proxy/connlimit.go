package proxy

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// ConnLimiter caps the client connections of one listener (see limits.go).
// Use Listener on the listener and ConnState as the http.Server's
// ConnState hook. When a connection arrives at the cap, the connection idle
// the longest between two requests is closed to make room; with none idle,
// the new connection waits until one ends, and the listener accepts
// nothing meanwhile (later clients wait in the kernel's accept backlog),
// so the process never runs out of descriptors for the probe, the admin
// API, the peer link and the storage.
type ConnLimiter struct {
	max int
	log *zap.Logger

	mu    sync.Mutex
	open  int                       // slots taken
	conns map[*limitedConn]struct{} // accepted and not closed yet
	freed chan struct{}             // a slot was given back (capacity 1)
	done  chan struct{}             // closed with the listener

	atCap    atomic.Bool // for logging once per change
	closedIn atomic.Uint64
}

// NewConnLimiter returns a limiter of max connections (at least 1).
func NewConnLimiter(limit int, log *zap.Logger) *ConnLimiter {
	return &ConnLimiter{max: max(limit, 1), log: log, conns: map[*limitedConn]struct{}{},
		freed: make(chan struct{}, 1), done: make(chan struct{})}
}

// Open is the number of connections open now; IdleClosed how many idle
// ones were closed to make room since start.
func (l *ConnLimiter) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// IdleClosed is how many idle keep-alive connections were closed to make
// room for new ones.
func (l *ConnLimiter) IdleClosed() uint64 { return l.closedIn.Load() }

// Max is the cap.
func (l *ConnLimiter) Max() int { return l.max }

// ConnState is the http.Server hook that tells the limiter which
// connections are idle. It runs twice per request, so it takes no lock: the
// connection itself keeps when it went idle.
func (l *ConnLimiter) ConnState(c net.Conn, s http.ConnState) {
	lc := limitedOf(c)
	if lc == nil {
		return // not accepted through Listener
	}
	if s == http.StateIdle {
		lc.idleSince.Store(time.Now().UnixNano())
	} else {
		lc.idleSince.Store(0)
	}
}

// limitedOf finds the limitedConn under c, which the server may have
// wrapped (TLS).
func limitedOf(c net.Conn) *limitedConn {
	for c != nil {
		switch v := c.(type) {
		case *limitedConn:
			return v
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// Listener wraps ln so it accepts no more than the cap.
func (l *ConnLimiter) Listener(ln net.Listener) net.Listener {
	return &limitedListener{Listener: ln, l: l}
}

// take reserves a slot, closing the longest-idle connection or waiting
// when at the cap. It reports false when the listener closed meanwhile.
func (l *ConnLimiter) take() bool {
	for {
		l.mu.Lock()
		if l.open < l.max {
			l.open++
			l.mu.Unlock()
			return true
		}
		var victim *limitedConn
		var since int64
		for c := range l.conns {
			if t := c.idleSince.Load(); t != 0 && (victim == nil || t < since) {
				victim, since = c, t
			}
		}
		if victim != nil {
			victim.idleSince.Store(0) // not picked twice
		}
		l.mu.Unlock()
		if l.atCap.CompareAndSwap(false, true) {
			l.log.Warn("client connection limit reached: closing idle connections, then waiting before accepting more",
				zap.Int("max_conns", l.max))
		}
		if victim != nil {
			// Its slot comes back through limitedConn.Close, at once.
			l.closedIn.Add(1)
			victim.Close()
			continue
		}
		select {
		case <-l.freed:
		case <-l.done:
			return false
		}
	}
}

func (l *ConnLimiter) give(c *limitedConn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.open--
	below := l.open < l.max*9/10
	l.mu.Unlock()
	select {
	case l.freed <- struct{}{}:
	default:
	}
	if below && l.atCap.Load() && l.atCap.CompareAndSwap(true, false) {
		l.log.Info("client connections back under their limit", zap.Int("max_conns", l.max))
	}
}

type limitedListener struct {
	net.Listener
	l    *ConnLimiter
	once sync.Once
}

// Accept admits a connection only once it has a slot: the connection that
// arrives at the cap waits (unserved) for one, and the listener accepts
// nothing else meanwhile.
func (ll *limitedListener) Accept() (net.Conn, error) {
	c, err := ll.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if !ll.l.take() {
		c.Close()
		return nil, net.ErrClosed
	}
	lc := &limitedConn{Conn: c, l: ll.l}
	ll.l.mu.Lock()
	ll.l.conns[lc] = struct{}{}
	ll.l.mu.Unlock()
	return lc, nil
}

func (ll *limitedListener) Close() error {
	ll.once.Do(func() { close(ll.l.done) })
	return ll.Listener.Close()
}

type limitedConn struct {
	net.Conn
	l         *ConnLimiter
	once      sync.Once
	idleSince atomic.Int64 // Unix ns when it went idle between two requests; 0 while not idle
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.give(c) })
	return err
}
