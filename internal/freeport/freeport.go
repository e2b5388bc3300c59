// Package freeport finds free loopback TCP ports for the programs that
// start several servers of their own on one host (make demo, make bench).
//
// The ports are free when Ports returns; another process can still take one
// before the caller binds it (the callers start their servers at once).
package freeport

import "net"

// Ports asks the kernel for n distinct free ports on 127.0.0.1: all n
// listeners are open at once, so no port is handed out twice.
func Ports(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
