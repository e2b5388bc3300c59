package proxy

import (
	stdlog "log"

	"go.uber.org/zap/zapcore"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// NewServer returns an http.Server with the timeouts a front door needs:
// a bounded header read (slowloris), an idle timeout for keep-alive
// connections, and no overall read/write timeout so streaming and
// long-polling responses work. Errors of the server itself go to log.
func NewServer(h http.Handler, log *zap.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          stdLog(log, zap.WarnLevel),
		// HTTP/2: frames no larger than the protocol's default (Go
		// advertises 1 MiB otherwise); a bigger one is a FRAME_SIZE_ERROR.
		HTTP2: &http.HTTP2Config{MaxReadFrameSize: 16 << 10},
	}
}

// ServerLimits are the per-connection limits of a main listener's server
// (see limits.go).
type ServerLimits struct {
	// MaxStreams bounds the concurrent streams of one HTTP/2 connection
	// (0: net/http's default, 250 in Go 1.26).
	MaxStreams int
	// ClientTimeout closes an HTTP/2 connection on which nothing could be
	// written for that long (a client that keeps its window at zero), as
	// the proxy fails a single stalled write (Options.ClientTimeout).
	ClientTimeout time.Duration
}

// Apply sets the limits on srv (built by NewServer).
func (l ServerLimits) Apply(srv *http.Server) {
	if srv.HTTP2 == nil {
		srv.HTTP2 = &http.HTTP2Config{}
	}
	srv.HTTP2.MaxConcurrentStreams = l.MaxStreams
	srv.HTTP2.WriteByteTimeout = l.ClientTimeout
}

// stdLog adapts log for the standard library's *log.Logger hooks.
func stdLog(log *zap.Logger, level zapcore.Level) *stdlog.Logger {
	l, err := zap.NewStdLogAt(log, level)
	if err != nil { // only for invalid levels
		return zap.NewStdLog(log)
	}
	return l
}
