//go:build unix

package node

import (
	"os/exec"
	"syscall"
)

// killGroup makes the command's cancellation kill its whole process group,
// so a hook's children die with it.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
