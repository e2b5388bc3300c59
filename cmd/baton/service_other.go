//go:build !windows

package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"
)

// host connects `baton run` to what started it: systemd (sd_notify) when
// NOTIFY_SOCKET is set, a terminal otherwise.
type host struct{}

// startHost is called first thing in cmdRun. On Unix there is nothing to
// start and stderr stays as it is (cmdRun refuses -service).
func startHost(_ runFlags, stderr io.Writer) (*host, io.Writer) { return &host{}, stderr }

// run runs the node until SIGINT or SIGTERM. systemd is told READY=1 once
// the node serves, RELOADING=1 and READY=1 around each SIGHUP reload, and
// STOPPING=1 when the stop sequence begins.
func (h *host) run(r runner, log *zap.Logger) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	sd := systemdNotifier{log: log}
	return serveNode(context.Background(), r, lifecycle{
		ready:    func() { sd.notify("READY=1\nSTATUS=serving") },
		stopping: func() { sd.notify("STOPPING=1\nSTATUS=stopping: probe 503, lease released, draining") },
		hup:      hup,
		reload: func(serving bool) {
			if serving {
				sd.notify("RELOADING=1\nSTATUS=reloading the configuration")
			}
			_, err := r.Reload() // logs what it applied or why it refused
			if !serving {
				return
			}
			if err != nil {
				sd.notify("READY=1\nSTATUS=serving; the last reload was rejected, see the log")
				return
			}
			sd.notify("READY=1\nSTATUS=serving")
		},
	})
}

// stop is deferred by cmdRun with its exit code; nothing to tell on Unix.
func (h *host) stop(code int) int { return code }
