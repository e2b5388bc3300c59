// Package azclient builds the Azure Blob Storage client that baton's storage
// users share (the lease backend in package lease, the certmagic storage in
// proxy/certstore), and classifies and redacts the errors it returns.
//
// New checks the options (auth mode, account URL, credentials) and builds
// an *azblob.Client with an explicitly bounded retry policy: one try lasts
// at most CallTimeout, a call makes at most MaxRetries+1 tries (transient
// errors: timeouts, 5xx, 429) with back-offs of at most MaxRetryDelay, and
// never outlives its context. Bound gives a context without a deadline the
// budget of one whole call, so no call is unbounded even when a caller
// forgets a deadline.
//
// Auth modes: "default" (DefaultAzureCredential), "managed-identity"
// (system-assigned, or user-assigned by ClientID), "connection-string",
// "shared-key" (account name from the URL unless given) and "sas". The
// identity modes need an https account URL.
//
// Secrets (connection string, account key, SAS token) are never part of an
// error or a log line this package produces: a Classifier removes them,
// plain and URL-encoded, from every message, and a redacted error unwraps
// only to the sentinel errors its original wrapped, never to the original.
//
// What it does not do: it makes no network call (New only builds clients;
// a wrong key or a missing role shows at the first request), it does not
// create containers or blobs, and it does not validate blob names beyond
// their length (callers know their own naming rules).
package azclient
