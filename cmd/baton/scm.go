package main

import (
	"errors"
	"time"
)

// The Windows service protocol, kept free of Windows types so that its
// behaviour is tested on every platform. service_windows.go adapts it to
// golang.org/x/sys/windows/svc.

// scmState is the state baton reports to the service control manager.
type scmState int

const (
	scmStartPending scmState = iota
	scmRunning
	scmStopPending
)

func (s scmState) String() string {
	switch s {
	case scmStartPending:
		return "start-pending"
	case scmRunning:
		return "running"
	case scmStopPending:
		return "stop-pending"
	}
	return "unknown"
}

// scmRequest is a control request of the service manager, as far as baton
// acts on it.
type scmRequest int

const (
	scmIgnore      scmRequest = iota
	scmInterrogate            // report the current state again
	scmStop                   // Stop: the SIGTERM path
	scmShutdown               // Shutdown, PreShutdown: the same path at a system shutdown
	scmReload                 // ParamChange (sc.exe control baton paramchange): the SIGHUP path
)

// The causes of a stop the service manager asked for: the node logs them
// as the stop's reason (a signal on Unix).
var (
	errServiceStop    = errors.New("service stop")
	errSystemShutdown = errors.New("system shutdown")
)

// scmSession is the service side of one run under the service manager.
type scmSession struct {
	ready  <-chan struct{}  // closed once the node serves
	exit   <-chan int       // cmdRun's exit code, once it returns
	stop   func(error)      // begins the node's stop sequence (cancels its context with this cause)
	reload func()           // re-reads the configuration
	tick   <-chan time.Time // progress while a state is pending
}

// serveSCM reports start-pending (with a progressing checkpoint) until the
// node is ready, then running until the manager asks to stop, then
// stop-pending until cmdRun has returned; it returns cmdRun's exit code.
// A reload request is acted on only while running.
// If cmdRun returns early (a configuration error, a port in use), the
// session ends at once with that code, whatever the state.
func serveSCM[R any](s scmSession, reqs <-chan R, classify func(R) scmRequest, report func(scmState, uint32)) int {
	state, checkpoint := scmStartPending, uint32(0)
	report(state, checkpoint)
	ready := s.ready
	for {
		select {
		case <-ready:
			ready = nil
			if state == scmStartPending {
				state, checkpoint = scmRunning, 0
				report(state, checkpoint)
			}
		case <-s.tick:
			if state != scmRunning {
				checkpoint++
				report(state, checkpoint)
			}
		case r := <-reqs:
			switch req := classify(r); req {
			case scmInterrogate:
				report(state, checkpoint)
			case scmStop, scmShutdown:
				if state != scmStopPending {
					state, checkpoint = scmStopPending, 0
					report(state, checkpoint)
					cause := errServiceStop
					if req == scmShutdown {
						cause = errSystemShutdown
					}
					s.stop(cause)
				}
			case scmReload:
				if state == scmRunning {
					s.reload()
				}
			}
		case code := <-s.exit:
			return code
		}
	}
}
