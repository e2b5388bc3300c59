// Package peer is the direct link between the nodes of a pair: a small
// authenticated HTTP API on its own port (inside the VNet, never behind the
// load balancer) that makes failover faster and cheaper, never possible in
// the first place. With the link down every node behaves exactly as without
// it: the lease in the storage decides.
//
// # What it carries
//
//   - hello: a peer's name, role, term and whether its fence is on. Each
//     node asks every peer every ProbeInterval (for /status and metrics:
//     reachability and round-trip time, and to learn the peers' names), and
//     a standby asks the holder once per retry instead of reading the
//     storage (lease.Config.HolderAlive).
//   - released / acquired pushes: a node that gave the lease up tells its
//     peers, which try to acquire at once (Elector.Nudge); a node that
//     acquired tells its peers its holder record, so requests held on the old
//     active move on at once (Elector.NoteHolder).
//   - handover/prepare and handover/commit: the target's side of a
//     step-down to a named node (lease.Elector.StepDownTo): prepare answers
//     a single-use lease ID the target proposes, commit makes the target
//     adopt the lease under its own ID and answers its holder record.
//   - failsafe/promise and failsafe/withdraw: during a storage outage the
//     active asks every peer to promise not to take the lease and not to
//     serve for a window (the lease duration, on the peer's clock); only
//     when every peer promised does it keep serving past its renew deadline
//     (lease.Config.Failsafe). It withdraws the promises when the storage
//     answers again or it stops being active. Requests are numbered
//     (rounds, increasing; they start from the wall clock in nanoseconds so
//     they also increase across a restart): a withdraw names the latest
//     round asked for and voids that round and earlier ones only.
//
// # Authentication
//
// Every request and every answer carries an HMAC-SHA256 over its method,
// path, time stamp and body, keyed with the shared secret (header
// Baton-Peer-Auth); an answer's MAC also covers the request's, so it cannot
// be replayed onto another request. A request is accepted only within
// MaxSkew of the receiver's wall clock and only once (a cache of the MACs
// seen within that window). Wrong or missing MACs get 401 and are logged
// once per peer address and state change, never per request. The secret is
// never logged. The link is not encrypted: it must stay inside the VNet
// (an NSG rule admitting the peer port from the pair's subnet only).
//
// # What is guaranteed
//
//   - Every call has a timeout (Options.Timeout) and nothing waits for the
//     link: pushes are sent in the background, and a peer that is down or
//     slow costs at most one timeout per attempt of the caller that asked.
//   - A push never turns a fence on, and a handover moves the lease only
//     through the storage (see package lease): a forged or replayed
//     message cannot make two nodes serve.
//   - Every goroutine is joined by Close.
//
// # What is NOT guaranteed
//
//   - Confidentiality: the messages (names, terms, advertise URLs, the
//     single-use handover ID) travel in clear text inside the VNet.
//   - Pushes are best effort: one lost push costs at most what the link
//     saves (the standby's next poll).
//   - Replay protection depends on the two wall clocks agreeing within
//     MaxSkew; nodes whose clocks differ more cannot talk (the log says so).
package peer
