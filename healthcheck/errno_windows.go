package healthcheck

import (
	"syscall"

	"golang.org/x/sys/windows"
)

// Winsock reports refused and reset connections with its own error numbers.
var (
	refusedErrnos = []error{syscall.ECONNREFUSED, windows.WSAECONNREFUSED}
	resetErrnos   = []error{syscall.ECONNRESET, windows.WSAECONNRESET}
)
