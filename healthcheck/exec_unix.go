//go:build unix

package healthcheck

import (
	"errors"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
)

// procTree is the command's process group: Setpgid makes the command the leader of a new group
// that its descendants inherit, and kill signals the whole group.
type procTree struct {
	// reaping is set once the group was killed after the command exited; from then on the
	// command may be reaped and its ID reused, so kill must not signal it again.
	reaping atomic.Bool
}

func (t *procTree) prepare(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

func (t *procTree) started(*exec.Cmd) {}

// kill sends SIGKILL to the command's process group (Cmd.Cancel, at the check's deadline).
func (t *procTree) kill(cmd *exec.Cmd) error {
	if t.reaping.Load() {
		return os.ErrProcessDone
	}
	return killGroup(cmd.Process.Pid)
}

// killRest kills what is left of the group after the command exited (it is not reaped yet).
func (t *procTree) killRest(cmd *exec.Cmd) {
	_ = killGroup(cmd.Process.Pid) // ESRCH: nothing left, the usual case
	t.reaping.Store(true)
}

func (t *procTree) release() {}

func killGroup(pgid int) error {
	err := syscall.Kill(-pgid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}
