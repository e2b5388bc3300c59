//go:build !leanh1

package proxy

import "net/http/httptest"

// startFront starts a front door built by frontFor: net/http's server.
// (With -tags leanh1 the same tests run against the lean HTTP/1.1
// prototype instead: leanh1_test.go.)
func startFront(s *httptest.Server) { s.Start() }
