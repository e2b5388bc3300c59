package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"
)

// Checker is one active health check of the local backend.
//
// Check must honour ctx: return promptly once ctx is done (the Monitor derives ctx from its own
// context with the check's timeout as deadline, and Stop waits for Check to return). A nil error
// means the check passed; otherwise the error's text is the reason shown in logs, Healthy() and
// Status, so it should be short ("status 500, want 200-399"). output is optional detail kept in
// the check's history (response status and body prefix, a command's output).
type Checker interface {
	Check(ctx context.Context) (output string, err error)
}

// checkError is a failed check: a short reason for people, and the cause for errors.Is/As.
type checkError struct {
	reason string
	cause  error
}

func (e *checkError) Error() string { return e.reason }
func (e *checkError) Unwrap() error { return e.cause }

func failf(cause error, format string, args ...any) error {
	return &checkError{reason: fmt.Sprintf(format, args...), cause: cause}
}

// describeErr turns an I/O error into a short reason: "timeout after 1s" when ctx's deadline
// cut the attempt short, "connection refused", "connection reset by peer", or the innermost
// error's text once the url.Error / net.OpError / os.SyscallError wrappers are peeled off.
func describeErr(ctx context.Context, start time.Time, err error) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return timeoutReason(ctx, start)
	}
	if errors.Is(err, context.Canceled) {
		return "canceled"
	}
	if isAny(err, refusedErrnos) {
		return "connection refused"
	}
	if isAny(err, resetErrnos) {
		return "connection reset by peer"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	for {
		switch e := err.(type) {
		case *url.Error:
			err = e.Err
		case *net.OpError:
			err = e.Err
		case *os.SyscallError:
			err = e.Err
		default:
			return err.Error()
		}
	}
}

func isAny(err error, targets []error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// timeoutKey carries a check's configured timeout in its context, so reasons name it exactly.
type timeoutKey struct{}

// withCheckTimeout is context.WithTimeout that also records d for timeoutReason.
func withCheckTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithValue(parent, timeoutKey{}, d), d)
}

// timeoutReason says how long the attempt was allowed to take: the configured timeout when the
// Monitor set it, else the time from start to ctx's deadline (which can read a little short if
// the check started late).
func timeoutReason(ctx context.Context, start time.Time) string {
	if d, ok := ctx.Value(timeoutKey{}).(time.Duration); ok {
		return "timeout after " + d.String()
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		return "timeout"
	}
	return "timeout after " + roundDuration(deadline.Sub(start)).String()
}

// roundDuration rounds d for display: the deadline was fixed a moment before the attempt began,
// so 999.97ms reads as 1s.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond)
	default:
		return d.Round(time.Microsecond)
	}
}

// typed is implemented by the built-in checkers so Status can name the check's type.
type typed interface{ Type() string }

// idleCloser is implemented by checkers holding idle connections; Monitor.Stop closes them.
type idleCloser interface{ CloseIdleConnections() }
