package testproc

import "syscall"

// sysProcAttr puts the child in its own process group and kills it when
// the test binary's thread that started it dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
