//go:build windows

// Command svcctl sends a service a control request, for the tests under
// Wine (packaging/test/test-windows.sh): Wine's sc.exe has no "control"
// command. Test-only; never shipped.
//
//	svcctl paramchange NAME   what `sc.exe control NAME paramchange` does on Windows
package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) != 2 || args[0] != "paramchange" {
		fmt.Fprintln(os.Stderr, "usage: svcctl paramchange NAME")
		return 2
	}
	m, err := mgr.Connect()
	if err != nil {
		fmt.Fprintf(os.Stderr, "svcctl: connect to the service manager: %v\n", err)
		return 1
	}
	defer m.Disconnect()
	s, err := m.OpenService(args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "svcctl: open the service %s: %v\n", args[1], err)
		return 1
	}
	defer s.Close()
	st, err := s.Control(svc.ParamChange)
	if err != nil {
		fmt.Fprintf(os.Stderr, "svcctl: paramchange %s: %v\n", args[1], err)
		return 1
	}
	fmt.Printf("paramchange sent to %s (state %d)\n", args[1], st.State)
	return 0
}
