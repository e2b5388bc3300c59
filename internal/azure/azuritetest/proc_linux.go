package azuritetest

import "syscall"

// setParentDeathSignal kills Azurite if the test binary dies without
// running its cleanups (a test timeout panic, kill -9).
func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
