// Package instance makes a configuration run at most once on a host and
// keeps the lease ID that lets a restarted process take its dead
// predecessor's lease over at once.
//
// # The instance lock
//
// Acquire takes an exclusive OS lock (flock on Unix, LockFileEx on Windows)
// on a file named after the configuration's identity (its node name and the
// lease it competes for) in the state directory, and writes the process ID
// into it. The lock is held until Close or the process's end: the operating
// system drops it when the process dies, however it dies (kill -9, a crash,
// a power cut of the process). A second process of the same configuration
// gets an error naming the lock file and the holder's PID.
//
// # The lease ID
//
// LeaseID returns the lease ID this process must use, read from a file
// beside the lock or, the first time, a new random GUID written durably
// (temporary file, fsync, rename, directory fsync) before it is returned,
// so before it can ever reach the storage. Retire replaces it durably with
// a new random ID and returns that one; a caller retires its ID before any
// call that gives the lease to someone else (release, change).
//
// # What is guaranteed
//
//   - While Acquire's lock is held, no other process on this host runs with
//     the same identity: any earlier process that used the lease ID is dead.
//   - An ID read from the file was never used in a call that gives the lease
//     away: such a call is only made after Retire has replaced the ID on
//     disk. A dead predecessor's calls still in flight with that ID can only
//     acquire or renew the lease for it, never release it or hand it to
//     another ID, so the successor may adopt the lease held under it.
//   - The ID never leaves the host except in calls to the lease storage.
//
// # What is NOT guaranteed
//
//   - The lock is per host: two hosts with the same node name and lease are
//     not detected here (their lease IDs differ, so the storage keeps them
//     apart, but both are named alike in the holder record).
//   - A state directory on a network file system, or copied to another host
//     with the ID file, breaks the "never leaves the host" property; keep it
//     local (the defaults are).
//   - If Retire fails (disk full, permissions), the caller must not make the
//     call that gives the lease away; the lease then expires on its own.
package instance
