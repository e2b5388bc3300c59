// Package config loads baton's TOML configuration: it decodes strictly,
// fills in the documented defaults, resolves go-sockaddr templates and
// validates every value and cross-field rule, so the rest of baton can use a
// Config without re-checking it. Only cmd/baton imports this package.
//
// Load (or LoadBytes) does, in order:
//
//  1. decode with github.com/BurntSushi/toml; unknown keys are errors, and
//     so are keys that differ from the schema only in case;
//  2. apply defaults: a string key written as "" takes its default (except
//     listen.http and backend.fencing_header, where "" disables), while
//     durations and numbers take theirs only when absent, so an explicit 0
//     is validated, not replaced; no [[health.check]] means one http check
//     "backend" against backend.url; a [runtime] key the file does not
//     write is left to the Go runtime when GOGC / GOMEMLIMIT is set (not
//     empty), and takes baton's default otherwise (Runtime records which);
//  3. resolve go-sockaddr templates (values containing "{{") in
//     listen.http, listen.https, probe.listen, admin.listen,
//     drain.advertise_url and tcp checks' address, once, at load;
//  4. derive drain.advertise_url (from listen.http, an unspecified host
//     replaced by {{ GetPrivateIP }} or 127.0.0.1) and drain.exit_delay
//     (probe.lb_interval × probe.lb_threshold + 1s) when not set;
//  5. validate, including the timing contract of every lease backend
//     (0 < renew_interval < renew_deadline < duration, 2 × renew_interval
//     <= renew_deadline, retry_interval < duration) and the azblob
//     backend's own limits (lease.duration a whole number of seconds in
//     Azure's 15s..60s, taken from internal/azure; call_timeout <
//     renew_interval).
//
// # Guarantees
//
//   - Every problem is reported, not just the first: the error is a *Error
//     or an errors.Join of them (use Errors to list them), each naming the
//     key ("health.check[1].rise") and, when the file writes it, its line.
//     Decoding problems (syntax, types, unknown keys) stop before
//     validation, so a misspelt key does not cause follow-on errors.
//   - An azblob lease without a storage account is an error that says so;
//     nothing falls back to the file lease, which cannot coordinate two
//     machines.
//   - The Config holds no secret values, only the files or environment
//     variables that hold them; ReadSecret reads one when it is needed.
//     Error messages never repeat a value that may be a secret
//     (lease.azblob.account_url is not echoed). Redacted additionally hides
//     URL credentials and credential-like check headers.
//   - With auth = "connection-string", an account_url naming another blob
//     endpoint than the connection string is an error, the same endpoint a
//     warning (Timing().Warnings): Load reads the connection string for
//     this, when it can, and keeps nothing of it (azendpoint.go).
//   - Files the configuration names (certificates, CA roots, secret files,
//     the admin token file) exist at load; exec checks' command[0] is
//     found on PATH at load.
//   - A file larger than 256 KiB, or nested deeper than 32 levels (table
//     and dotted-key parts, arrays and inline tables added up), is refused
//     before decoding, so neither can exhaust memory (also on reload); the
//     files it names are read with bounds too (internal/fsutil).
//
// # Not guaranteed
//
//   - Files can disappear or change after Load; certificates and keys are
//     only checked to exist, not parsed or matched, and a file that exists
//     but cannot be read (permissions) is left to the component that opens
//     it, since check-config may run as another user than the service.
//   - Environment variables named for secrets are not checked at load,
//     except that a connection string is compared with account_url when
//     both are there (a warning says so when it cannot be read).
//     GOGC and GOMEMLIMIT are only looked at for being set: their values
//     are the Go runtime's to parse (except GOMEMLIMIT=off, which makes
//     gc_percent = -1 an error).
//   - Templates reflect the network interfaces at load time; a later
//     address change is not followed.
//   - Relative paths are relative to the working directory, not to the
//     configuration file.
//   - Line numbers come from a small scanner of the already-parsed file
//     (the TOML library does not expose key positions); an error whose key
//     is not written in the file points at its nearest written table, or
//     has no line.
//   - The failover times of Timing are worst-case estimates from the
//     configured values; they assume the load balancer really probes every
//     probe.lb_interval.
package config
