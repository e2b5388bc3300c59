// Package history keeps a shared, durable record of the election's terms,
// like `patronictl history`: which node held the lease in each term, when
// and how it got it (acquired; handed over by NODE; taken over from this
// node's previous process), when and how the term ended (released: REASON;
// handed over to NODE; lost: REASON; or, when nobody recorded it, unknown
// (superseded by term N+1)), and the failsafe periods within it. It
// answers "why did node B become active at 12:03?" on any node, also on a
// standby and while the node is down: `baton history` reads it straight
// from the storage.
//
// The record lives beside the lease, in the lease's storage: a JSON file
// "<lease file>.history" for the file lease (File, under an OS lock of its
// own, "<lease file>.history.lock", never the lease file's), a blob
// "<lease blob>.history" in the lease's container on Azure (lease/azlock's
// NewHistory, a Conditional store: If-Match on the ETag, If-None-Match: *
// on creation, and a fresh read on a lost race). The schema is Document:
// a version and the entries, ordered by term.
//
// # Who writes what
//
// Each node records its own terms: the start when it acquires the lease,
// the end when it is demoted (with the reason the Elector gave, and
// whether the lease was released or handed over), and the failsafe
// periods. A term whose holder recorded no end (it crashed, froze, lost
// the storage, or its write did not make it) is ended by the next holder
// when it records its own start: "handed over to NODE" when it was handed
// the lease by that term's holder, "lost: taken over after a crash by the
// node's restarted process" when it is that node's restarted process, and
// "lost: expired or the node crashed" otherwise, at the new term's
// acquisition time. An end the holder records itself replaces one another
// node inferred (a release whose record arrives after the successor's),
// never the other way round. Both nodes may write at once; every write is
// a read-modify-write that loses no other writer's update.
//
// # What is guaranteed
//
//   - The election never waits for the history. The Recorder is fed by
//     lease.Config.OnEvent, which only appends to a bounded in-memory queue
//     (MaxPending records); its own goroutine writes, each write bounded
//     by WriteTimeout. A failed write is retried in the background with a
//     growing pause (1 s up to 1 min); failing and recovering are logged
//     once each, never per attempt. Nothing here can delay an acquisition,
//     a renew, a release, a handover or a request, and nothing here is an
//     error of the election.
//   - The document is bounded: the latest MaxEntries (1,000) terms, at
//     most MaxPeriods (100) failsafe periods per term, reasons cut at 300
//     bytes.
//   - Entries are ordered by term, one per term; the terms are the lease's
//     own fencing terms, so they order the holders. Every term but the
//     latest has an end.
//   - Every record is idempotent: a write whose outcome was unknown is
//     applied again without duplicating anything.
//
// # What is NOT guaranteed (best effort)
//
//   - Completeness. A node that crashes, freezes or loses the storage
//     before its record is written leaves a gap: a term with no entry
//     (when its start was never written), or an end inferred by the next
//     holder (when its end was not). Records still queued when a process
//     is killed are lost; on a stop the node waits for them briefly (2 s).
//     A term acquired and given back before the node served on it may be
//     missing.
//   - Exact times. Times are the writers' wall clocks (acquisition: the
//     holder record's time; ends: when the node saw the demotion). An
//     inferred end is the next acquisition's time, an upper bound.
//   - Timeliness. During a storage outage records wait in memory and are
//     written when the storage answers again (or dropped past MaxPending,
//     oldest first, which is logged).
//   - Continuity across a reset of the lease: when its blob or file is
//     deleted, the terms start again at 1, and the entries of the older
//     terms from that number on are dropped when the new ones are
//     written.
//   - A handover whose target never confirmed is recorded as "handed over
//     to NODE" although the old holder then released the lease; the next
//     term's start says who really took it.
package history
