// Package monitoring holds no code: it is baton's Prometheus alert rules
// (baton.rules.yml, with promtool unit tests in baton.rules.test.yml) and a
// Grafana dashboard for a pair (baton-pair.dashboard.json); README.md,
// "Monitoring". Its tests run promtool on the rules and on the dashboard's
// queries, and check that every metric they name is one a live baton pair
// exports.
package monitoring
