// Package lease decides which baton node is active: the Elector runs the
// election over a Lock, a small interface over a shared lease with an
// expiry kept by the storage. It owns the election, the Lock contract
// (Record, the sentinels ErrHeld, ErrLost and ErrConfig) and the file
// backend (FileLock, for processes on one host). The production backend,
// Azure Blob Storage, is the sub-package lease/azlock: this package links
// no storage SDK, so another backend is one more implementation of Lock,
// and the lease duration's bounds are the backend's (the elector asks only
// for the timing contract below).
//
// # The node's life
//
// A node is a candidate only while its backend is healthy (SetHealthy) and
// it is not in maintenance (SetMaintenance), and not during the candidacy
// back-off that follows every demotion. A candidate calls Acquire once per
// RetryInterval; when another node holds the lease it is a standby (it does
// not flip between standby and candidate on every retry). A node that is not
// a candidate still reads the holder record once per RetryInterval, so that
// State always names the active node for request forwarding; while requests
// wait for an active node during a handover (Seek), every SeekInterval.
//
// The active node renews every RenewInterval. Each attempt has its own
// timeout, the smaller of RenewInterval and the time left until the
// deadline. The deadline is the send time of the last successful acquire or
// renew plus RenewDeadline, on the monotonic clock. A timer at the deadline
// demotes the node even if a renew call is still hanging; ErrLost demotes at
// once. Every demotion turns the fence off first, then (when voluntary:
// unhealthy backend, maintenance, StepDown, Stop) releases the lease with a
// fresh context bounded by ReleaseTimeout, then starts the back-off, then
// publishes the new role. Role changes are published as a latest value
// (State, Changed, Watch) and logged once each ("role changed").
//
// # What is guaranteed
//
//   - Fence answers ok only while the node is active and the local clock has
//     not reached the deadline. It is one atomic load and one monotonic time
//     comparison, so it holds even if the election loop has not run (a node
//     frozen past its deadline refuses its first request after waking up).
//   - The node never serves after its own deadline, and the deadline
//     (RenewDeadline after the send time of the last successful call) falls
//     before the storage's expiry (at least Duration after that send time):
//     the storage cannot hand the lease to another node while this node's
//     fence is still on, as long as the two clocks' rates agree within the
//     margin Duration - RenewDeadline.
//   - Each acquisition increments the term stored with the lease by exactly
//     one (a write only the new holder makes), so terms order the holders.
//   - SetHealthy(false), SetMaintenance(true), StepDown and Stop turn the
//     fence off before they return; the lease is released only afterwards.
//   - Every goroutine the Elector starts is joined by Stop.
//
// # What is NOT guaranteed
//
//   - Clock rate skew between this host and the storage beyond the margin
//     Duration - RenewDeadline (a clock that runs slow by more than that
//     fraction) breaks the bound above. Wall clocks are never compared
//     across hosts; only rates matter.
//   - A request that passed the fence check and is then frozen (GC pause, VM
//     freeze) before it reaches the backend can reach it after the deadline,
//     while a new active serves. Requests already in flight at a demotion
//     also overlap with the new active. This overlap is inherent and
//     bounded by the in-flight work; the fencing term, passed to the backend,
//     lets a backend reject writes from a stale leader.
//   - The Lock must honour contexts. A call that ignores its context cannot
//     delay a demotion (the deadline timer does not wait for it), but Stop
//     waits for it to return, and the next call may then run beside it.
//   - During a storage outage no node is active after the deadline: with no
//     lock service nobody can prove it is alone.
//
// # The file backend
//
// FileLock coordinates processes on ONE host only (demo, tests): it relies
// on that host's OS file locks and wall clock. Two machines pointing at a
// shared file system must not use it; use Azure Blob Storage
// (lease/azlock). Its leases may be shorter than Azure's 15 s minimum.
package lease
