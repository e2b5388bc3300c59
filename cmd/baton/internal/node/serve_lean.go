//go:build leanh1

package node

import (
	"net"
	"net/http"

	"github.com/batonproxy/baton/proxy"
)

// servePlain serves the plain-HTTP listener with the lean HTTP/1.1
// prototype (bench only; see proxy/leanh1.go).
func servePlain(srv *http.Server) func(net.Listener) error {
	return func(ln net.Listener) error { return proxy.ServeLean(srv, ln) }
}
