package azuritetest

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// DelayProxy is a TCP proxy on a free loopback port that adds a delay,
// changeable at run time, to the data it forwards in each direction, and
// that can be paused (data is held, a blackhole) or made to drop its
// connections. It stops, closing every connection, when the test ends.
type DelayProxy struct {
	// Addr is the proxy's listen address (127.0.0.1:PORT).
	Addr   string
	target string
	ln     net.Listener
	t      testing.TB

	mu      sync.Mutex
	delay   time.Duration
	paused  bool
	changed chan struct{} // closed and replaced on every change
	conns   map[net.Conn]struct{}
	closed  bool

	quit chan struct{}
	wg   sync.WaitGroup
}

// NewDelayProxy starts a proxy to target (host:port) and registers its
// Close with t.Cleanup.
func NewDelayProxy(t testing.TB, target string) *DelayProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("delay proxy: listen: %v", err)
	}
	p := &DelayProxy{
		Addr:    ln.Addr().String(),
		target:  target,
		ln:      ln,
		t:       t,
		changed: make(chan struct{}),
		conns:   make(map[net.Conn]struct{}),
		quit:    make(chan struct{}),
	}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// URL returns http://ADDR followed by path (e.g. "/devstoreaccount1").
func (p *DelayProxy) URL(path string) string { return "http://" + p.Addr + path }

// SetDelay sets the delay added to each chunk of data, in each direction,
// from now on (chunks already waiting are re-timed).
func (p *DelayProxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.notifyLocked()
	p.mu.Unlock()
}

// SetPaused holds all data (new connections are accepted but nothing is
// forwarded) while on; turning it off lets the held data through.
func (p *DelayProxy) SetPaused(on bool) {
	p.mu.Lock()
	p.paused = on
	p.notifyLocked()
	p.mu.Unlock()
}

// DropConns closes every open connection (both sides), like a network
// reset. New connections are still accepted.
func (p *DelayProxy) DropConns() {
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

// Close stops the proxy and closes every connection; it waits (at most 5 s)
// for its goroutines. It is idempotent.
func (p *DelayProxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.quit)
	p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		p.t.Errorf("delay proxy %s: goroutines did not end within 5s", p.Addr)
	}
}

func (p *DelayProxy) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *DelayProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *DelayProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *DelayProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.t.Logf("delay proxy %s: accept: %v", p.Addr, err)
			}
			return
		}
		if !p.track(c) {
			continue
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *DelayProxy) serve(client net.Conn) {
	defer p.wg.Done()
	defer p.untrack(client)
	d := net.Dialer{Timeout: 5 * time.Second}
	upstream, err := d.Dial("tcp", p.target)
	if err != nil {
		return // the client sees its connection closed, like a refused dial
	}
	if !p.track(upstream) {
		return
	}
	defer p.untrack(upstream)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(upstream, client) }()
	go func() { defer wg.Done(); p.pipe(client, upstream) }()
	wg.Wait()
}

// pipe copies src to dst, holding each chunk until it is delay old and the
// proxy is not paused. When either side ends, both are closed.
func (p *DelayProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.hold(time.Now()) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF, reset or closed: end both directions
		}
	}
}

// hold waits until data read at readAt may be forwarded. It returns false
// when the proxy is closing.
func (p *DelayProxy) hold(readAt time.Time) bool {
	for {
		p.mu.Lock()
		delay, paused, changed := p.delay, p.paused, p.changed
		p.mu.Unlock()
		var timer *time.Timer
		var fire <-chan time.Time
		if !paused {
			wait := time.Until(readAt.Add(delay))
			if wait <= 0 {
				return true
			}
			timer = time.NewTimer(wait)
			fire = timer.C
		}
		select {
		case <-fire:
			return true
		case <-changed:
		case <-p.quit:
			if timer != nil {
				timer.Stop()
			}
			return false
		}
		if timer != nil {
			timer.Stop()
		}
	}
}
