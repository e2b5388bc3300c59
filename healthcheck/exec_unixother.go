//go:build unix && !linux

package healthcheck

import "os/exec"

// waitExit reports false: without a portable way to wait for the command without reaping it,
// descendants still running after a successful command are not killed on this platform (they
// are at the deadline, with the rest of the group).
func (t *procTree) waitExit(*exec.Cmd) bool { return false }
