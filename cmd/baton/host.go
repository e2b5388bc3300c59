package main

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/batonproxy/baton/cmd/baton/internal/node"
)

// runner is the part of *node.Node that the service managers drive.
type runner interface {
	// Run serves until ctx is cancelled, then runs the stop sequence
	// (probe 503, release, drain) and returns.
	Run(ctx context.Context) error
	// Ready is closed once the node serves and the first health round ran.
	Ready() <-chan struct{}
	// Reload re-reads the configuration file (it logs the outcome).
	Reload() (node.ReloadResult, error)
}

// lifecycle is what a service manager is told about the node, and what it
// may ask of it. Every field may be nil.
type lifecycle struct {
	ready    func()           // the node serves (systemd READY=1, Windows SERVICE_RUNNING)
	stopping func()           // the stop sequence began (systemd STOPPING=1)
	hup      <-chan os.Signal // reload requests (SIGHUP on Unix)
	// reload handles one reload request; serving says whether ready was
	// called and the stop sequence has not begun, i.e. whether the service
	// manager may be told about the reload.
	reload func(serving bool)
}

// serveNode runs r until ctx is cancelled or the process gets SIGINT or
// SIGTERM (on Windows also a console close or shutdown event): all of them
// take the same path, the node's stop sequence. After the first of those
// signals the default handling is restored, so a second one ends the
// process at once. Reload requests that arrive once the stop sequence
// began are dropped (the node would refuse them).
func serveNode(ctx context.Context, r runner, lc lifecycle) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		ready, stopping := r.Ready(), ctx.Done()
		serving := false
		for {
			select {
			case <-ready:
				ready, serving = nil, true
				call(lc.ready)
			case <-stopping:
				stopping, ready, serving = nil, nil, false
				stop() // a second signal now ends the process at once
				call(lc.stopping)
			case <-lc.hup:
				if stopping != nil && lc.reload != nil {
					lc.reload(serving)
				}
			case <-done:
				return
			}
		}
	})
	err := r.Run(ctx)
	close(done)
	wg.Wait()
	return err
}

func call(f func()) {
	if f != nil {
		f()
	}
}
