package healthcheck

import (
	"os"
	"os/exec"
	"sync"
	"unsafe"

	"golang.org/x/sys/windows"
)

// procTree is a job object holding the command and, since children inherit the job, its
// descendants; killing terminates the job. If the job cannot be set up, kill falls back to the
// process alone. The command is assigned to the job just after it started, so a child it spawns
// in that instant escapes the job.
type procTree struct {
	mu   sync.Mutex
	job  windows.Handle // 0 when no job could be set up
	proc windows.Handle // the command's process, for waitExit; 0 if it could not be opened
	done bool           // the command exited and the job was terminated
}

func (t *procTree) prepare(*exec.Cmd) {}

func (t *procTree) started(cmd *exec.Cmd) {
	t.mu.Lock()
	defer t.mu.Unlock()
	proc, err := windows.OpenProcess(windows.PROCESS_SET_QUOTA|windows.PROCESS_TERMINATE|windows.SYNCHRONIZE, false, uint32(cmd.Process.Pid))
	if err != nil {
		return
	}
	t.proc = proc
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return
	}
	info := windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION{
		BasicLimitInformation: windows.JOBOBJECT_BASIC_LIMIT_INFORMATION{
			LimitFlags: windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
		},
	}
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		_ = windows.CloseHandle(job)
		return
	}
	if err := windows.AssignProcessToJobObject(job, proc); err != nil {
		_ = windows.CloseHandle(job)
		return
	}
	t.job = job
}

// kill terminates the job (Cmd.Cancel, at the check's deadline), or the process alone.
func (t *procTree) kill(cmd *exec.Cmd) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return os.ErrProcessDone
	}
	if t.job != 0 {
		return windows.TerminateJobObject(t.job, 1)
	}
	return cmd.Process.Kill()
}

// waitExit blocks until the command's process has exited; the open handle keeps its ID from
// being reused. It reports false if the process could not be opened.
func (t *procTree) waitExit(*exec.Cmd) bool {
	t.mu.Lock()
	proc := t.proc
	t.mu.Unlock()
	if proc == 0 {
		return false
	}
	_, err := windows.WaitForSingleObject(proc, windows.INFINITE)
	return err == nil
}

// killRest terminates what is left in the job after the command exited.
func (t *procTree) killRest(*exec.Cmd) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.job != 0 {
		_ = windows.TerminateJobObject(t.job, 1)
	}
	t.done = true
}

// release closes the handles; closing the job kills anything still in it.
func (t *procTree) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.job != 0 {
		_ = windows.CloseHandle(t.job)
		t.job = 0
	}
	if t.proc != 0 {
		_ = windows.CloseHandle(t.proc)
		t.proc = 0
	}
	t.done = true
}
