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

// stdLog adapts log for the standard library's *log.Logger hooks.
func stdLog(log *zap.Logger, level zapcore.Level) *stdlog.Logger {
	l, err := zap.NewStdLogAt(log, level)
	if err != nil { // only for invalid levels
		return zap.NewStdLog(log)
	}
	return l
}
