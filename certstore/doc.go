// Package certstore is a certmagic Storage and Locker on Azure Blob
// Storage, so that every baton node shares one ACME account, one set of
// certificates and the locks that make only one node talk to the CA at a
// time. It owns the mapping of certmagic's keys and locks to blobs; the
// storage client, the classification of the storage's errors, Azure's
// lease bounds and the blob-lease primitive its locks are built on belong
// to internal/azure, which the election's lock (lease/azlock) shares.
//
// A key maps to the block blob Prefix+key in Container (default
// "baton/certmagic/..."); "directories" are the blob name prefixes ending
// in "/". The storage account and its authentication are configured like
// the lease's (internal/azure.Options), and the container may be the
// lease's: the lease blob and the certmagic prefix do not overlap.
//
// # Semantics (certmagic.Storage)
//
//   - Store writes a whole blob in one Put Blob: a concurrent Load sees the
//     old or the new value, never a mix. The container is created when it
//     is missing (idempotent; it needs the right to create containers,
//     otherwise create it up front).
//   - Load, Stat and List of a key (or directory) that does not exist
//     return an error satisfying errors.Is(err, fs.ErrNotExist).
//   - Delete of a missing key is not an error (certmagic's contract;
//     FileStorage's os.RemoveAll behaves the same). Delete of a directory
//     deletes every key under it.
//   - Exists and Stat see directories (IsTerminal false, no size or time).
//   - List(path, false) returns the direct children of path, files and
//     directories; List(path, true) returns everything under it, the
//     intermediate directories included, as FileStorage does. Keys are
//     sorted.
//
// # Locks (certmagic.Locker, TryLocker, LockLeaseRenewer)
//
// A lock is a blob lease on the blob Prefix+"locks/"+name (created empty
// when missing and left in place after Unlock). Lock tries to acquire it
// with LockTTL and a fresh random lease ID, polls about once a second
// (with jitter) while another holder has it, and returns once acquired or
// when ctx ends. While held, a goroutine renews the lease every LockTTL/3,
// so a long ACME issuance keeps its lock; Unlock stops that goroutine,
// waits for it, and releases the lease. Several callers in one process
// exclude each other too (each acquisition has its own lease ID), and a
// local waiter is woken as soon as the local holder unlocks.
//
// # What is guaranteed
//
//   - Mutual exclusion holds while the holder's renewals succeed: Azure
//     refuses the lease to any other ID until it expires or is released.
//   - A holder that dies (or cannot reach the storage) stops renewing, and
//     its lock becomes free LockTTL after its last successful renewal at
//     the latest, with no operator action.
//   - Every storage call is bounded: one try lasts at most CallTimeout and
//     a call makes at most three tries (internal/azure), also when ctx has no
//     deadline; List and a directory Delete bound each page and each blob.
//     Unlock releases with a context detached from the caller's
//     cancellation but bounded the same way.
//   - Every goroutine is joined by Unlock or Close. No secret appears in an
//     error or a log line.
//
// # What is NOT guaranteed
//
//   - No fencing: a holder that cannot renew for LockTTL loses the lock
//     while it may still be working (it logs an error, and
//     RenewLockLease, which certmagic calls between issuance attempts,
//     then fails). certmagic tolerates this: it re-checks storage after
//     taking a lock, and the worst case is a second certificate order.
//   - Lock does not queue waiters fairly, and a waiter in another process
//     notices a release only at its next poll (about one second). A lock
//     whose lease was lost stays "held" for this Storage's own callers
//     until its Unlock.
//   - Lock retries transient storage errors (5xx, timeouts, network) until
//     ctx ends; with a ctx without deadline it waits out an outage. Only
//     ErrConfig errors end it early.
//   - List is not a snapshot: it pages through the container and may miss
//     or include keys written during the listing.
//   - Store, Delete and the lock blobs share the container's throughput
//     limits with the lease; certmagic's traffic is small (a few calls per
//     certificate and day, plus one call per second per waiting Lock).
package certstore
