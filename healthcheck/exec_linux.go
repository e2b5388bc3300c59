package healthcheck

import (
	"os/exec"

	"golang.org/x/sys/unix"
)

// waitExit blocks until the command has exited, without reaping it (waitid with WNOWAIT), and
// reports true: its process ID, and so its process group ID, stays reserved until Cmd.Wait.
// It returns once the command exits on its own or is killed by Cmd.Cancel at the deadline.
func (t *procTree) waitExit(cmd *exec.Cmd) bool {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return err == nil
		}
	}
}
