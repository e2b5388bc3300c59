package node

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"
)

// tcpProbe serves probe.mode = "tcp": the probe port accepts connections
// only while the node is up (active, lease valid, backend healthy, not
// stopping); otherwise nothing listens there and a load balancer's TCP
// probe gets a reset. The state is re-read on every change and at least
// every 50 ms (the own-clock lease deadline passes without an event).
func (n *Node) tcpProbe(ctx context.Context) {
	var (
		ln net.Listener
		wg sync.WaitGroup
	)
	defer func() {
		if ln != nil {
			ln.Close()
		}
		wg.Wait()
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	failed := false
	for {
		ch1, ch2 := n.elector.Changed(), n.monitor().Changed()
		up, _ := n.probeState()
		switch {
		case up && ln == nil:
			l, err := net.Listen("tcp", n.tcpProbeAddr)
			if err != nil {
				if !failed {
					n.log.Error("tcp probe: cannot listen, the load balancer sees this node down", zap.Error(err))
					failed = true
				}
				break
			}
			failed = false
			ln = l
			wg.Go(func() { acceptAndClose(l) })
		case !up && ln != nil:
			ln.Close()
			ln = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-ch1:
		case <-ch2:
		case <-tick.C:
		}
	}
}

// acceptAndClose completes each probe's handshake and closes the connection.
func acceptAndClose(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		c.Close()
	}
}
