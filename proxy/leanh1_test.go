//go:build leanh1

package proxy

import "net/http/httptest"

// startFront serves a front door built by frontFor with the lean HTTP/1.1
// prototype (leanh1.go), so `go test -tags leanh1 ./proxy/` runs the
// differential and smuggling suites against it.
func startFront(s *httptest.Server) {
	s.URL = "http://" + s.Listener.Addr().String()
	go ServeLean(s.Config, s.Listener)
}
