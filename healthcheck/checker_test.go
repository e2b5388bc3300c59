package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestTimeoutReason(t *testing.T) {
	deadline := time.Now().Add(time.Hour)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	tests := []struct {
		before time.Duration // start = deadline - before
		want   string
	}{
		{time.Second, "timeout after 1s"},
		{time.Second - 30*time.Microsecond, "timeout after 1s"}, // the deadline was set just before
		{1500 * time.Millisecond, "timeout after 1.5s"},
		{100*time.Millisecond - 20*time.Microsecond, "timeout after 100ms"},
	}
	for _, tt := range tests {
		if got := timeoutReason(ctx, deadline.Add(-tt.before)); got != tt.want {
			t.Errorf("%s before the deadline: %q, want %q", tt.before, got, tt.want)
		}
	}
	// Under the Monitor the configured timeout is named, however late the check started.
	mctx, mcancel := withCheckTimeout(context.Background(), 2*time.Second)
	defer mcancel()
	if got := timeoutReason(mctx, time.Now().Add(time.Second)); got != "timeout after 2s" {
		t.Errorf("with the configured timeout: %q", got)
	}
	if got := timeoutReason(context.Background(), time.Now()); got != "timeout" {
		t.Errorf("without a deadline: %q", got)
	}
}

func TestDescribeErr(t *testing.T) {
	dial := func(err error) error {
		return &url.Error{Op: "Get", URL: "http://x/", Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", err)}}
	}
	tests := []struct {
		err  error
		want string
	}{
		{dial(syscall.ECONNREFUSED), "connection refused"},
		{dial(syscall.ECONNRESET), "connection reset by peer"},
		{dial(syscall.EHOSTUNREACH), "no route to host"},
		{&url.Error{Op: "Get", URL: "http://x/", Err: &net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}}, "lookup x: no such host"},
		{fmt.Errorf("wrapped: %w", context.Canceled), "canceled"},
		{errors.New("plain"), "plain"},
	}
	for _, tt := range tests {
		if got := describeErr(context.Background(), time.Now(), tt.err); got != tt.want {
			t.Errorf("describeErr(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
