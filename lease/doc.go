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
// (State, Changed, Watch, and synchronously to Config.OnState) and logged
// once each ("role changed"; with OnState set, at debug level as "election
// role changed", because the owner of the node's role logs them).
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
//   - During a storage outage no node is active after the deadline, unless
//     failsafe (below) holds: with no lock service nobody can prove it is
//     alone.
//
// # Crash-restart takeover, pushes and handover (optional)
//
// A Lock whose lease ID the node keeps on disk (Keyed, Config.IDs; the
// host's instance lock guarantees that at most one process of the node
// runs) lets a restarted process take over the lease its dead predecessor
// left behind: its first Acquire succeeds at once while the lease is still
// held under that ID (Record.Resumed; a new term, so the backend can tell
// the two processes apart). Not eligible (backend unhealthy) after
// Config.InheritGrace, it releases that lease instead, so another node
// acquires it without waiting for the expiry. Over a direct link between
// the nodes, Nudge (the holder released), NoteHolder (a node acquired) and
// Config.HolderAlive (the holder vouches for itself, so a standby skips its
// storage calls) only make the election faster or cheaper. StepDownTo hands
// the lease to a named node with Changer.Change: the target proposes an ID
// (Prepare), the holder fences itself off and moves the lease to it, the
// target adopts it under its own ID (Changer.Adopt: renewed, new term).
//
// Why this keeps at most one node serving:
//
//   - A takeover adopts a lease held under this node's own ID: by the
//     storage's rules no other ID held it in between (else the Acquire
//     fails with ErrHeld), so no other node can have been active under it.
//     The predecessor is dead (the instance lock), so it serves nothing.
//   - The only calls that give a lease away are release and change. Before
//     either, the Elector retires the lease ID durably (IDStore.Retire) and
//     uses the next one afterwards; if retiring fails the call is not made.
//     So a successor only ever adopts an ID whose give-away calls were never
//     sent: a dead predecessor's calls still on their way can acquire or
//     renew that lease for the successor, never free it or pass it on. A
//     lease ID never leaves the host except to the storage; the ID proposed
//     for a handover is single-use and replaced by the target's own at once.
//   - In a handover the old holder turns its fence off before the change,
//     and the target turns its fence on only after its Adopt (which renews)
//     succeeded, with the deadline counted from that call's send time: the
//     same bound as an acquisition. The lease is held throughout, so no
//     third node can take it. If the target never confirms, the old holder
//     releases under the proposed ID; the target's Adopt and that release
//     are ordered by the storage, and the target serves only if its Adopt
//     came first, in which case the release does nothing.
//   - Pushes and HolderAlive never turn a fence on: they only wake or
//     delay a follower's own storage calls. A forged or stale push can at
//     worst make a node try to acquire, or forward a request to a node that
//     is not active (which fences it again itself).
//
// What the link does not change: kill -9 without a restart, a frozen
// process and a lost VM still cost the lease duration plus a retry.
//
// # Failsafe (optional)
//
// With Config.Failsafe, a storage outage need not stop the active: after a
// renew fails for any reason but ErrLost, the active asks every peer to
// promise, for Duration on the peer's own clock from when it answered, not
// to acquire the lease and not to serve (Promise on the peer's Elector). If
// every peer promised, the active moves its deadline to the send time of
// that promise round plus RenewDeadline, exactly as a renew would, and
// tries again every renew interval; when the storage answers it renews (an
// expired Azure lease that nobody took renews) and withdraws the promises.
// If any peer does not answer in time, nothing is extended and the active
// demotes at its deadline as without failsafe.
//
// Why this keeps at most one node serving: a promise is a lease granted by
// the peer instead of the storage, with the same margin. The peer's promise
// lasts Duration from a moment no earlier than the active's send time; the
// active serves only until that send time plus RenewDeadline, so it stops
// before any promise it relies on can lapse, as long as the two clocks'
// rates agree within Duration - RenewDeadline (the lease's own condition).
// While its promise holds, a peer stays out of candidacy, refuses
// handovers, and never turns its fence on: becomeActive checks the promise
// under the same lock as Promise, so an acquisition already on its way when
// the promise was given is given back unused. A peer that is active itself
// refuses to promise. So a promise binds even when the peer's own storage
// works (the active alone is cut off). A withdraw voids only the promise
// rounds up to the one it names (Elector.Withdraw), so a withdraw that is
// delivered late, after the active asked again in a new outage, cannot
// free the peer while the active relies on the newer promise; a promise of
// a round already withdrawn is refused. What it assumes: Config.Failsafe
// asks every node that competes for the lease (the peers list must be
// complete); a node that is not asked is not bound.
//
// # Pause guard
//
// The fence's deadline is kept on two clocks, Config.Now's (monotonic in
// production) and the wall clock, and Fence requires both to be before it
// (clock.go; the two readings come from one time.Now call). A detector
// compares how far the two clocks moved every Config.ClockJump/4 (50 ms
// to 1 s); when they disagree by more than ClockJump it turns the fence
// off at once, and the node serves again only after a renew (or, in
// failsafe, a promise round) SENT after the detection succeeded: one in
// flight across the jump does not count.
//
// What this covers: a VM that a hypervisor paused resumes with either
// clock jumped forward and the other not, or with both jumped. If the wall
// clock was synchronized forward, Fence fails on its first call, before
// the detector runs; if only the monotonic clock jumped, the detector
// catches it within a tick, and the monotonic deadline has moved by the
// pause as well. A wall-clock step by NTP, either way, costs a needless
// re-verification (a renew round trip without serving), never a request
// served without a valid lease.
//
// What it does not cover: a request that passed Fence in the instant
// before the VM was paused reaches the backend after the resume (the same
// overlap as a request admitted just before a demotion, bounded by the
// backend's own timeouts); and a pause after which NEITHER clock
// advanced, until the wall clock is synchronized (the wall deadline then
// catches it, as soon as it is). Slow drift between the clocks (NTP slews
// at most 500 ppm) is not a jump; the lease's margin covers it, as the
// timing contract says.
//
// # The file backend
//
// FileLock coordinates processes on ONE host only (demo, tests): it relies
// on that host's OS file locks and wall clock. Two machines pointing at a
// shared file system must not use it; use Azure Blob Storage
// (lease/azlock). Its leases may be shorter than Azure's 15 s minimum.
package lease
