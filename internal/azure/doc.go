// Package azure is baton's one home for Azure Blob Storage: the storage
// client and its options, the classification and redaction of the SDK's
// errors, the account-name rule, Azure's blob-lease bounds, and the
// blob-lease primitive that the election's lock (lease/azlock) and the
// certmagic locker (certstore) are built on. Nothing else in baton imports
// the Azure SDK's storage packages for these things.
//
// # The client
//
// NewClient checks the options (auth mode, account URL, credentials) and
// builds an *azblob.Client with an explicitly bounded retry policy: one try
// lasts at most CallTimeout, a call makes at most MaxRetries+1 tries
// (transient errors: timeouts, 5xx, 429) with back-offs of at most
// MaxRetryDelay, and never outlives its context. Bound gives a context
// without a deadline the budget of one whole call, so no call is unbounded
// even when a caller forgets a deadline; every method of Container and
// Lease applies it.
//
// Auth modes: "default" (DefaultAzureCredential), "managed-identity"
// (system-assigned, or user-assigned by ClientID), "connection-string",
// "shared-key" (account name from the URL unless given, see
// AccountNameFromURL) and "sas". The identity modes need an https account
// URL.
//
// # Errors
//
// A Classifier (one per Container) turns the SDK's errors into one-line
// errors that name what to fix when the cause is configuration
// (credentials, roles, network rules, a wrong endpoint). Each caller
// passes its own sentinel errors as Kinds; the storage's answers, by their
// bloberror codes, map to them in one place: Kinds.Config for errors no
// retry fixes, Kinds.Held when another lease ID holds the lease,
// Kinds.Lost when the caller's lease ID does not hold it. Timeouts keep
// the context error; everything else is a plain, transient error.
//
// Secrets (connection string, account key, SAS token) are never part of an
// error or a log line this package produces: they are removed, plain and
// URL-encoded, from every message, and a redacted error unwraps only to the
// sentinel errors its original wrapped, never to the original.
//
// # The blob-lease primitive
//
// A Lease is one lease ID (a GUID, chosen by the caller or random) on one
// blob of a Container. Ensure creates the empty blob (and the container)
// when missing, idempotently and safely when nodes race; Acquire (which
// ensures once by itself), Renew, Release, Change (Azure's Change Lease:
// the holder moves the lease to a proposed ID) and Break are Azure's lease
// actions; Properties reads the lease state and the metadata (keys in
// lower case) whoever holds the lease, HeldProperties and SetMetadata only
// while this ID holds it (the lease ID is their access condition).
//
// What is guaranteed: Azure itself excludes every other ID while a lease
// is held, for the duration it was acquired with (MinLeaseDuration to
// MaxLeaseDuration, whole seconds; CheckLeaseDuration); a handle's ID never
// changes, so after Change only a handle with the proposed ID holds the
// lease; Acquire by the ID that holds the lease succeeds again (a lost
// answer can be retried); durations and IDs are checked before any call.
//
// # Small documents
//
// ReadBlob reads a whole blob (with a size bound) and its ETag; WriteBlob
// writes it back only if the ETag is unchanged (If-Match), or creates it
// only if it does not exist (If-None-Match: *). A lost race is an error
// wrapping ErrBlobChanged: read again and retry. The election's history
// (lease/history, through lease/azlock) is kept this way, beside the lease
// blob, never under its lease.
//
// What it does not do: it keeps no state about holding (it does not renew
// by itself, and it cannot tell a lease that expired from one that is
// still held until it asks); it knows nothing of what the metadata means
// (the election's holder record and term are lease/azlock's); it makes no
// network call when it is built (a wrong key or a missing role shows at
// the first request); and it does not validate blob names beyond their
// length (callers know their own naming rules).
package azure
