//go:build windows

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
)

// serviceName is the name the .msi installs the service under; it is also
// the event log source the .msi registers.
const serviceName = "baton"

// Event IDs in the Application log. The .msi registers EventCreate.exe as
// the message file, which accepts IDs 1 to 1000.
const (
	eventStarting = 1
	eventStopped  = 2
	eventFailed   = 3
	eventLogLine  = 4 // a log line, when the log file cannot be opened
)

// scmPendingTick is how often a pending state reports progress, and
// scmWaitHint how long the manager should wait for the next report.
const (
	scmPendingTick = 2 * time.Second
	scmWaitHint    = 10 * time.Second
)

// stopJoinTimeout bounds the wait for the service dispatcher to report
// the service stopped after cmdRun returned.
const stopJoinTimeout = 30 * time.Second

// host connects `baton run` to what started it: the Windows service
// control manager, or a console.
type host struct {
	ctx    context.Context         // the node's context: cancelled by Stop/Shutdown
	cancel context.CancelCauseFunc // with the reason the node logs

	// Set only when running as a service.
	service bool
	ready   chan struct{} // closed once the node serves
	exit    chan int      // cmdRun's exit code
	done    chan struct{} // closed when svc.Run returned
	runErr  error         // svc.Run's error; read after done is closed
	logPath string
	logFile *os.File
	elog    *eventlog.Log          // nil if the event source cannot be opened
	node    atomic.Pointer[runner] // set by run, for reloads
}

// startHost is called first thing in cmdRun. Under the service manager it
// connects to it (svc.Run, in its own goroutine, joined by stop) and
// returns a stderr that writes to the log file next to the configuration
// (%ProgramData%\baton\baton.log for the .msi's service), where every
// message of cmdRun goes, configuration errors included (log.file, when
// set, takes the node's log elsewhere). In a console it changes nothing.
//
// The service's command line says it is one (run -service): the .msi and
// `baton service install` write it so. Without -service the session-0
// heuristic of svc.IsWindowsService decides, for services registered by
// hand; it is wrong where services do not run in session 0 (Wine).
func startHost(f runFlags, stderr io.Writer) (*host, io.Writer) {
	ctx, cancel := context.WithCancelCause(context.Background())
	h := &host{ctx: ctx, cancel: cancel}
	isService := f.service
	if !isService {
		var err error
		isService, err = svc.IsWindowsService()
		if err != nil {
			fmt.Fprintf(stderr, "baton: cannot tell whether this runs as a Windows service, assuming not: %v\n", err)
		}
	}
	if !isService {
		return h, stderr
	}
	h.service = true
	h.ready, h.exit, h.done = make(chan struct{}), make(chan int, 1), make(chan struct{})
	if l, err := eventlog.Open(serviceName); err == nil {
		h.elog = l
	}
	// Next to the configuration, named after it: baton.log for the .msi's
	// service, NAME.log for `baton service install -name NAME`.
	h.logPath = serviceLogPath(f.config)
	if err := os.MkdirAll(filepath.Dir(h.logPath), 0o750); err == nil {
		h.logFile, err = os.OpenFile(h.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			h.event(eventFailed, fmt.Sprintf("cannot open the log file, logging to the event log instead: %v", err))
		}
	}
	console := stderr
	if h.logFile != nil {
		stderr = h.logFile
	} else {
		stderr = eventWriter{h}
	}
	h.event(eventStarting, "baton service starting; log: "+h.logPath)
	go func() {
		defer close(h.done)
		if err := svc.Run(serviceName, h); err != nil {
			// Also where someone typed `baton run -service` by hand.
			h.runErr = err
			fmt.Fprintf(console, "baton: service control dispatcher: %v (-service is for the service manager)\n", err)
			fmt.Fprintf(stderr, "baton: service control dispatcher: %v\n", err)
			h.event(eventFailed, fmt.Sprintf("service control dispatcher: %v", err))
			h.cancel(fmt.Errorf("service control dispatcher: %w", err))
		}
	}()
	return h, stderr
}

// run runs the node until the service manager asks it to stop (or, in a
// console, until Ctrl-C or a close event): the same stop sequence as
// SIGTERM on Unix.
func (h *host) run(r runner, _ *zap.Logger) error {
	var lc lifecycle
	if h.service {
		h.node.Store(&r)
		lc.ready = func() { close(h.ready) }
	}
	return serveNode(h.ctx, r, lc)
}

// stop is deferred by cmdRun with its exit code: the service reports
// stopped with that code (service-specific) once the node has finished.
func (h *host) stop(code int) int {
	h.cancel(nil)
	if !h.service {
		return code
	}
	h.exit <- code
	t := time.NewTimer(stopJoinTimeout)
	select {
	case <-h.done:
		if h.runErr != nil && code == exitOK {
			code = exitFailure // not a service after all: the node was stopped at once
		}
	case <-t.C:
	}
	t.Stop()
	if code == 0 {
		h.event(eventStopped, "baton service stopped")
	} else {
		h.event(eventFailed, fmt.Sprintf("baton service stopped with exit code %d (1: runtime failure, 2: configuration error); see %s", code, h.logPath))
	}
	if h.logFile != nil {
		h.logFile.Close()
	}
	if h.elog != nil {
		h.elog.Close()
	}
	return code
}

// Execute is called by svc.Run when the service manager starts the service.
func (h *host) Execute(_ []string, r <-chan svc.ChangeRequest, s chan<- svc.Status) (bool, uint32) {
	tick := time.NewTicker(scmPendingTick)
	defer tick.Stop()
	code := serveSCM(scmSession{ready: h.ready, exit: h.exit, stop: h.cancel, reload: h.reload, tick: tick.C}, r,
		classifyChange, func(st scmState, checkpoint uint32) { s <- svcStatus(st, checkpoint) })
	return code != 0, uint32(code)
}

func classifyChange(c svc.ChangeRequest) scmRequest {
	switch c.Cmd {
	case svc.Interrogate:
		return scmInterrogate
	case svc.Stop:
		return scmStop
	case svc.Shutdown, svc.PreShutdown:
		return scmShutdown
	case svc.ParamChange:
		return scmReload
	}
	return scmIgnore
}

func svcStatus(st scmState, checkpoint uint32) svc.Status {
	hint := uint32(scmWaitHint / time.Millisecond)
	switch st {
	case scmRunning:
		// PreShutdown gives the drain more time than Shutdown at a
		// system shutdown.
		return svc.Status{State: svc.Running,
			Accepts: svc.AcceptStop | svc.AcceptShutdown | svc.AcceptPreShutdown | svc.AcceptParamChange}
	case scmStopPending:
		return svc.Status{State: svc.StopPending, CheckPoint: checkpoint, WaitHint: hint}
	default:
		return svc.Status{State: svc.StartPending, CheckPoint: checkpoint, WaitHint: hint}
	}
}

// reload re-reads the configuration on a ParamChange request (the node
// logs the outcome).
func (h *host) reload() {
	if r := h.node.Load(); r != nil {
		(*r).Reload()
	}
}

// event writes to the Application event log, if the source could be opened.
func (h *host) event(id uint32, msg string) {
	if h.elog == nil {
		return
	}
	switch id {
	case eventFailed:
		h.elog.Error(id, msg)
	default:
		h.elog.Info(id, msg)
	}
}

// eventWriter sends each write (a log line) to the event log: the fallback
// when the log file cannot be opened.
type eventWriter struct{ h *host }

func (w eventWriter) Write(p []byte) (int, error) {
	w.h.event(eventLogLine, strings.TrimRight(string(p), "\r\n"))
	return len(p), nil
}
