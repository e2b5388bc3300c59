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
//   - A request that is not served locally never reaches the backend: it is
//     answered 503 with Retry-After and Connection: close, so the client
//     reconnects (through the load balancer) to the active node.
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
//     http.Server.Shutdown does not wait for them; the owner closes them at the
//     drain deadline at the latest.
package proxy
