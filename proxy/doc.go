// Package proxy is baton's data plane: the reverse proxy in front of the
// local backend, the load balancer's probe answer, and the HTTP servers that
// carry them.
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
//   - X-Forwarded-For from the client is dropped, except on requests marked
//     as forwarded by a peer, whose chain is kept. A client can forge that
//     marker; treat X-Forwarded-For as advisory, as with any proxy.
package proxy
