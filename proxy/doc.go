// Package proxy is baton's data plane: the reverse proxy in front of the
// local backend, the load balancer's probe answer, and the HTTP servers that
// carry them.
//
// # One request, one decision, one record
//
// ServeHTTP decides once (dispatch): serve locally under the term the Fence
// answered, forward to the active node, or answer 503; a request held
// while no active node is known comes back to that one decision when this
// node became active meanwhile. Each path is owned by one piece: the local
// path (serveLocal) reaches the backend through one seam, serveBackend,
// which picks the fast path (fastpath.go) or httputil.ReverseProxy; the
// forwarder (standby.go) owns its transport to the peers, the Leader and
// the hold, and never calls back into the local path. Every path writes
// through the request's exchange, which records the outcome (path, status,
// term, client gone, bytes); record, at the end, is the one place that
// counts it (request counters, status counts by path, the duration
// histogram, the access log). The Observer is told when the backend's
// answer arrives (modifyResponse, errorHandler), not at the end: a long
// body or an upgraded connection says nothing about the backend. An
// Observer that is a PathObserver is told the request's path too.
//
// # What it guarantees
//
//   - Request-path fencing: every request asks the Fence "may I serve
//     locally right now?" before anything is sent to the backend. The answer
//     is one atomic load and one monotonic comparison in the lease package, so
//     a node that wakes from a freeze past its renew deadline sends nothing to
//     its backend, whatever its probe said a moment earlier.
//   - A request that is not served locally never reaches the local backend.
//     In "forward" mode it is proxied to the active node named by the holder
//     record (waiting up to the hold time while none is known), marked with
//     ForwardedHeader so it is never forwarded twice; otherwise, or when no
//     active appears, it is answered 503 with Retry-After. Either way the
//     response carries Connection: close, so the client's next request goes
//     through the load balancer to the active node.
//   - A node that was demoted while a request ran answers that request with
//     Connection: close; CutOff ends what is left
//     at a drain deadline, upgraded connections included.
//   - The fencing term is sent to the backend in the configured header; a
//     client cannot forge it (the header is always overwritten or removed).
//   - A client cannot make the backend trust its X-Forwarded-For, -Proto or
//     -Host: they are set from the connection, except on a request whose
//     forwarding marker verifies with the peer secret (forwardmark.go),
//     which carries the values the forwarding node saw.
//   - Nothing multiplexed reaches the backend past the fence: only the
//     configured upgrade protocols (WebSocket by default) are tunnelled,
//     and h2c upgrades are removed (screen.go).
//   - A failure on the client's side (malformed or cut-short body, stalled
//     body, client gone) is answered 400, 408 or 499 and never reported to
//     the Observer as a backend failure (screen.go, clientFault).
//   - A request body is streamed to the backend, never held whole (but for
//     the small ones read first, limits.go), on both paths. A body that
//     fails midway spoils only the backend connection that carried part
//     of it: that connection is closed, never given to the next request.
//     A request is sent again (once, on a new connection, when a reused
//     one failed before any byte of the answer) only when it is
//     replayable and no byte of its body was sent.
//   - Expect: 100-continue is the backend's to answer: it is forwarded,
//     and a body that was not read already (limits.buffer_body) is read
//     from the client only after the backend's 100, or after a second
//     without an answer; a final answer instead is relayed and the body
//     not sent (on HTTP/1 with Connection: close, as the client may never
//     send it).
//   - Client traffic cannot exhaust the backend, the descriptors or the
//     goroutines the probe and the election need: see limits.go for the
//     connection cap, the backend slots, the slow-client timeouts and the
//     salvage of cancelled requests.
//   - The probe answers exactly 200 when the node is serving and 503
//     otherwise, with a one-line body naming the role.
//   - Backend faults map to status codes in one place (502 refused or broken,
//     504 timeout, 499 client gone) and are logged once per change of state,
//     not once per request.
//
// # What it does not guarantee
//
//   - A request that passed the fence just before the node was demoted is
//     finished on the old backend while the new active starts serving: that
//     overlap is inherent, and bounded by the drain timeout.
//   - Upgraded (WebSocket) connections are hijacked from net/http, so
//     http.Server.Shutdown does not wait for them; the owner closes them with
//     CutOff at the drain deadline at the latest.
//   - Without a peer secret a forwarded request reaches the backend with
//     the forwarding node's address and the hop's scheme: nothing else can
//     be vouched for.
//   - An upgraded connection is a byte tunnel: after a demotion it lasts
//     until it ends or CutOff at the drain deadline.
//   - The backend slots bound what is sent, not how fast the backend is:
//     a health check that times out under load still counts (a hung
//     backend and a busy one look the same from here).
package proxy
