//go:build !windows

package healthcheck

import "syscall"

var (
	refusedErrnos = []error{syscall.ECONNREFUSED}
	resetErrnos   = []error{syscall.ECONNRESET}
)
