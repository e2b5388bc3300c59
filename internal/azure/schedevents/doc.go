// Package schedevents watches Azure's Scheduled Events: the Instance
// Metadata Service (IMDS) endpoint that announces platform and
// user-initiated maintenance of a VM (a reboot, a redeploy to another host,
// a freeze for a live migration, a Spot eviction, a scale set's delete)
// some minutes before it happens. baton turns such an announcement into a
// planned switchover (cmd/baton/internal/node wires it); this package only
// reads the service, keeps the set of pending events and approves an event
// when asked. It imports nothing of baton's.
//
// # The service
//
// GET {imds}/metadata/scheduledevents?api-version=2020-07-01 with the header
// "Metadata: true" answers a document with a DocumentIncarnation and an
// Events array; each event has an EventId, an EventType (Freeze, Reboot,
// Redeploy, Preempt, Terminate), the Resources (VM names) it affects, an
// EventStatus (Scheduled, then Started; an event that is over leaves the
// array, there is no Completed status) and a NotBefore time (RFC 1123,
// blank once started). Events of every VM of an availability set or a scale
// set's placement group are delivered to all of them, so the Watcher keeps
// only those whose Resources name this VM (case-insensitively; the name
// comes from {imds}/metadata/instance/compute/name unless Options.VMName
// gives it) and whose type is in Options.Types. POSTing
// {"StartRequests": [{"EventId": ID}]} to the same path approves an event,
// which lets Azure start it before NotBefore for every VM it names. IMDS is
// never reached through a proxy: the Watcher's client ignores HTTP_PROXY.
//
// Microsoft documents a minimum notice of 15 minutes for Freeze and Reboot,
// 10 minutes for Redeploy, 30 seconds for Preempt and 5 to 15 minutes
// (configurable) for Terminate, recommends polling once a second, warns
// that the first request can take up to two minutes (it turns the service
// on) and that the service turns itself off after 24 hours without a
// request. After a host's hardware failure an event appears directly as a
// Started Reboot, without notice.
//
// # What is guaranteed
//
//   - The Watcher polls every Options.Interval (DefaultInterval, 1 s, as
//     Microsoft recommends) from Run until its context ends, one call at a
//     time, so the service never turns itself off while baton runs. Until
//     the first answer every call may take FirstCallTimeout; later calls
//     CallTimeout.
//   - Pending is the set of events of the watched types for this VM, by
//     EventId, as of the last answer that parsed. Each change (an event
//     appeared, changed its status, or is gone) is logged once, passed to
//     Options.OnChange and signalled on Changed.
//   - An answer that is not a document (IMDS unreachable, a status other
//     than 200, a body that is not the JSON above) changes nothing: the
//     pending events stay as they were, State says why, and the failure is
//     logged once per kind of failure, not per poll; the first good answer
//     after it is logged once too.
//   - Every request carries "Metadata: true", never follows a redirect and
//     reads at most 1 MiB of answer.
//
// # What is NOT covered
//
//   - An event announced with less notice than a switchover and a drain
//     take (Preempt's 30 seconds against a long drain.timeout, or a
//     hardware failure's Started Reboot): the consumer learns of it as
//     early as the service tells, no earlier.
//   - IMDS down or answering garbage: the Watcher then knows nothing new;
//     an event announced meanwhile is seen only when the service answers
//     again, and an event that ended meanwhile stays pending until then.
//   - Events for other VMs, and event types outside Options.Types, are
//     ignored (those of this VM are logged once each).
package schedevents
