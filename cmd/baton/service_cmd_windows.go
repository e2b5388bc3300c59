//go:build windows

package main

import (
	"errors"
	"fmt"
	"io"
	"time"

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
// "baton": automatic start, sp.account, restarted after a failure, also
// after an exit with an error code. It does not start it. A service of
// that name is an error: nothing is changed then.
func installService(sp serviceSpec) error {
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
	actions := make([]mgr.RecoveryAction, len(sp.restarts))
	for i, d := range sp.restarts {
		actions[i] = mgr.RecoveryAction{Type: mgr.ServiceRestart, Delay: d}
	}
	err = s.SetRecoveryActions(actions, uint32(sp.resetPeriod/time.Second))
	if err == nil {
		err = s.SetRecoveryActionsOnNonCrashFailures(true)
	}
	if err != nil {
		s.Delete() // half a service is none
		return fmt.Errorf("set the recovery of the service %s (it was not installed): %w", sp.name, err)
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
	c, err := s.Config()
	if err != nil {
		return fmt.Errorf("read the configuration of the service %s: %w", name, err)
	}
	if !isBatonCommandLine(c.BinaryPathName) {
		return fmt.Errorf("the service %s does not run baton (%s): not removing it", name, c.BinaryPathName)
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
