// Package healthcheck decides whether the local backend is fit to serve: active checks (HTTP,
// TCP, a command) run on their own tickers, and passive signals (error rate, overload) come
// from the live traffic the proxy reports. The result gates candidacy: cmd/baton watches
// Monitor.Changed and tells the elector.
//
// # What it guarantees
//
//   - A node starts unhealthy. A check becomes healthy after Rise consecutive passes and
//     unhealthy after Fall consecutive failures; Healthy() is true when every Required check is
//     healthy and no passive signal is tripped.
//   - Start runs every check once at once (concurrently), then each on its own ticker.
//     FirstRoundDone is closed after that first round is reflected in Healthy().
//   - Each run has a context derived from the Monitor's with the check's timeout as deadline.
//     An exec check kills the command with its process group (Unix) or job object (Windows)
//     at the deadline.
//   - Healthy() is one atomic load. Changed() is a latest-value broadcast (a channel closed on
//     the next change of ok); it never blocks the checkers and never queues.
//   - One log line per change of overall health: Info "backend healthy" / Warn "backend
//     unhealthy" with the failing check and reason, plus one Warn when the first round fails.
//     A backend that refuses connections for an hour logs once, not once per run.
//   - RequestStarted, RequestDone and RequestDonePath take no lock, read no clock and allocate
//     nothing; the error-rate windows are computed by a ticker that samples cumulative
//     counters (see passive.go), so they slide in steps of at most 250ms (a thousandth of the
//     window for windows over 250s).
//   - Path rules (PathSpec) are error rates over the requests under a URL path prefix, each
//     with its own threshold, window and cooldown; every rule whose prefix matches counts a
//     request. A tripped rule holds the node unhealthy like the global rate, with a reason
//     naming its prefix.
//   - Stop cancels the runs in flight, joins every goroutine and closes idle connections; the
//     result of a cancelled run is discarded, so stopping never flips Healthy().
//
// # What it does not do
//
//   - It does not decide who is active, nor act on the verdict: the caller does.
//   - A Checker that ignores its context blocks Stop until it returns.
//   - The HTTP check reuses one kept-alive connection between runs, so it proves the backend
//     answers, not that it still accepts new connections; the TCP check proves the latter.
//   - On Windows the command is put in its job object just after it started; a child spawned in
//     that instant, or one that breaks away from the job, survives the kill. On Unix, a
//     descendant that leaves the process group (setsid) survives it. On Unix other than Linux,
//     descendants still running after the command exits on its own are not killed.
//   - The passive signals only see what the proxy reports; requests forwarded to another node
//     must not be reported. After a cooldown every error-rate window starts empty; while one
//     signal holds the node out, the others are not evaluated.
package healthcheck
