package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/batonproxy/baton/cmd/baton/internal/node"
)

// fakeRunner stands in for *node.Node: Run blocks until its context is
// cancelled and then until the test releases it.
type fakeRunner struct {
	ready     chan struct{}
	release   chan struct{} // Run returns once this is closed (after ctx is done)
	runErr    error
	reloadErr error
	reloads   chan struct{} // one value per Reload call
}

func newFakeRunner() *fakeRunner {
	return &fakeRunner{ready: make(chan struct{}), release: make(chan struct{}), reloads: make(chan struct{}, 16)}
}

func (f *fakeRunner) Run(ctx context.Context) error {
	<-ctx.Done()
	<-f.release
	return f.runErr
}

func (f *fakeRunner) Ready() <-chan struct{} { return f.ready }

func (f *fakeRunner) Reload() (node.ReloadResult, error) {
	err := f.reloadErr // read before the test may change it for the next call
	f.reloads <- struct{}{}
	return node.ReloadResult{}, err
}

// recorder collects lifecycle events in order.
type recorder chan string

func (r recorder) lifecycle(hup <-chan os.Signal) lifecycle {
	return lifecycle{
		ready:    func() { r <- "ready" },
		stopping: func() { r <- "stopping" },
		hup:      hup,
		reload:   func(serving bool) { r <- fmt.Sprintf("reload serving=%v", serving) },
	}
}

func (r recorder) want(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-r:
		if got != want {
			t.Fatalf("event %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no event, want %q", want)
	}
}

func TestServeNodeLifecycle(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	f := newFakeRunner()
	f.runErr = errors.New("listener failed")
	rec := make(recorder, 8)
	hup := make(chan os.Signal) // unbuffered: a send returns once the loop took it
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- serveNode(ctx, f, rec.lifecycle(hup)) }()

	hup <- syscall.SIGHUP // before the node serves: reload, but do not tell the manager
	rec.want(t, "reload serving=false")
	close(f.ready)
	rec.want(t, "ready")
	hup <- syscall.SIGHUP
	rec.want(t, "reload serving=true")
	cancel() // the service manager's stop, or a signal
	rec.want(t, "stopping")
	hup <- syscall.SIGHUP // during the stop sequence: dropped
	close(f.release)
	if err := <-errc; !errors.Is(err, f.runErr) {
		t.Fatalf("serveNode returned %v, want Run's error", err)
	}
	select {
	case ev := <-rec:
		t.Fatalf("unexpected event %q after stopping", ev)
	default:
	}
}

func TestServeNodeStopsBeforeReady(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	f := newFakeRunner()
	rec := make(recorder, 8)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- serveNode(ctx, f, rec.lifecycle(nil)) }()
	cancel()
	rec.want(t, "stopping")
	close(f.ready) // too late: the manager must not hear READY after STOPPING
	close(f.release)
	if err := <-errc; err != nil {
		t.Fatalf("serveNode: %v", err)
	}
	select {
	case ev := <-rec:
		t.Fatalf("unexpected event %q", ev)
	default:
	}
}
