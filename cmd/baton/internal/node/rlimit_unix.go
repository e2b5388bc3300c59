//go:build unix

package node

import "syscall"

// openFilesLimit is the process's open-files limit (the soft one, which Go
// raises to the hard one at start), or 0 when unknown.
func openFilesLimit() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0
	}
	return uint64(r.Cur)
}
