//go:build windows

package main

import (
	"errors"
	"fmt"
	"io"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"
)

// serviceManager says whether this platform has the Windows service
// manager that `baton service` registers services with.
const serviceManager = true

// connectSCM connects to the service manager with the rights to create
// and delete services, which need an elevated prompt.
func connectSCM() (*mgr.Mgr, error) {
	m, err := mgr.Connect()
	if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		return nil, fmt.Errorf("the service manager refused access: run this from an elevated prompt (as an administrator)")
	}
	if err != nil {
		return nil, fmt.Errorf("cannot connect to the service manager: %w", err)
	}
	return m, nil
}

// installService registers sp the way the .msi registers the service
// "baton": the command line serviceCommandLine writes, automatic start, sp.account, restarted after a failure, also
// after an exit with an error code (if that one setting fails, it says so
// on warn and keeps the service). It does not start it. A service of
// that name is an error: nothing is changed then.
func installService(sp serviceSpec, warn io.Writer) error {
	m, err := connectSCM()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	if s, err := m.OpenService(sp.name); err == nil {
		s.Close()
		return fmt.Errorf("the service %s exists already; remove it first: baton service remove -name %s", sp.name, sp.name[len("baton-"):])
	}
	s, err := m.CreateService(sp.name, sp.exe, mgr.Config{
		DisplayName:      sp.display,
		Description:      sp.description,
		StartType:        mgr.StartAutomatic,
		ErrorControl:     mgr.ErrorNormal,
		ServiceStartName: sp.account,
	}, sp.args...)
	if err != nil {
		return fmt.Errorf("create the service %s: %w", sp.name, err)
	}
	defer s.Close()
	// CreateService quotes the program's path only when it has a space;
	// the command line is always written with it in quotes.
	cmdline, err := windows.UTF16PtrFromString(serviceCommandLine(sp.exe, sp.args))
	if err == nil {
		err = windows.ChangeServiceConfig(s.Handle, windows.SERVICE_NO_CHANGE, windows.SERVICE_NO_CHANGE,
			windows.SERVICE_NO_CHANGE, cmdline, nil, nil, nil, nil, nil, nil)
	}
	if err != nil {
		s.Delete()
		return fmt.Errorf("set the command line of the service %s (it was not installed): %w", sp.name, err)
	}
	actions := make([]mgr.RecoveryAction, len(sp.restarts))
	for i, d := range sp.restarts {
		actions[i] = mgr.RecoveryAction{Type: mgr.ServiceRestart, Delay: d}
	}
	if err := s.SetRecoveryActions(actions, uint32(sp.resetPeriod/time.Second)); err != nil {
		s.Delete() // half a service is none
		return fmt.Errorf("set the recovery of the service %s (it was not installed): %w", sp.name, err)
	}
	// Restarts after an error exit too, not only after a crash. Every
	// Windows baton runs on has this setting; Wine has not ("Invalid
	// level"). Without it the service is still restarted after a crash.
	if err := s.SetRecoveryActionsOnNonCrashFailures(true); err != nil {
		fmt.Fprintf(warn, "baton service install: warning: the service %s is restarted after a crash but not after an error exit: %v\n", sp.name, err)
	}
	return nil
}

// removeService stops the service name (its node releases the lease and
// drains: a planned switchover of its pair), waits up to timeout for it to
// stop, and deletes it. It refuses a service that does not run `baton run`.
func removeService(name string, timeout time.Duration, stdout io.Writer) error {
	m, err := connectSCM()
	if err != nil {
		return err
	}
	defer m.Disconnect()
	s, err := m.OpenService(name)
	if errors.Is(err, windows.ERROR_SERVICE_DOES_NOT_EXIST) {
		return fmt.Errorf("there is no service %s", name)
	}
	if err != nil {
		return fmt.Errorf("open the service %s: %w", name, err)
	}
	defer s.Close()
	cmdline, err := commandLine(s)
	if err != nil {
		return fmt.Errorf("read the command line of the service %s: %w", name, err)
	}
	if !isBatonCommandLine(cmdline) {
		return fmt.Errorf("the service %s does not run baton (%s): not removing it", name, cmdline)
	}
	st, err := s.Query()
	if err != nil {
		return fmt.Errorf("query the service %s: %w", name, err)
	}
	if st.State != svc.Stopped {
		fmt.Fprintf(stdout, "stopping %s (probe 503, lease released, drained; up to %s)...\n", name, timeout)
		if st.State != svc.StopPending {
			if _, err := s.Control(svc.Stop); err != nil && !errors.Is(err, windows.ERROR_SERVICE_NOT_ACTIVE) {
				return fmt.Errorf("stop the service %s: %w", name, err)
			}
		}
		deadline := time.Now().Add(timeout)
		for {
			st, err = s.Query()
			if err != nil {
				return fmt.Errorf("query the service %s: %w", name, err)
			}
			if st.State == svc.Stopped {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the service %s did not stop within %s; it was not removed (-timeout)", name, timeout)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	if err := s.Delete(); err != nil {
		return fmt.Errorf("delete the service %s: %w", name, err)
	}
	fmt.Fprintf(stdout, "removed the service %s; its configuration and log are left where they are\n", name)
	return nil
}

// commandLine is the service's command line (its ImagePath). Not
// (*mgr.Service).Config, which also asks for settings (the SID type, a
// delayed start) that some service managers do not know (Wine: "Invalid
// level"), and baton needs none of them here.
func commandLine(s *mgr.Service) (string, error) {
	n := uint32(1024)
	for {
		b := make([]byte, n)
		p := (*windows.QUERY_SERVICE_CONFIG)(unsafe.Pointer(&b[0]))
		err := windows.QueryServiceConfig(s.Handle, p, n, &n)
		if err == nil {
			return windows.UTF16PtrToString(p.BinaryPathName), nil
		}
		if !errors.Is(err, windows.ERROR_INSUFFICIENT_BUFFER) || n <= uint32(len(b)) {
			return "", err
		}
	}
}
