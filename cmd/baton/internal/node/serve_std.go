//go:build !leanh1

package node

import (
	"net"
	"net/http"
)

// servePlain is how the plain-HTTP listener serves: net/http's server. (A
// bench-only build, -tags leanh1, swaps in the lean HTTP/1.1 prototype of
// proxy/leanh1.go; bench/README.md has the numbers and the decision.)
func servePlain(srv *http.Server) func(net.Listener) error { return srv.Serve }
