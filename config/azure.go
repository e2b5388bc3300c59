package config

import (
	"slices"
	"strconv"
	"strings"

	"github.com/batonproxy/baton/internal/azure/schedevents"
)

// Azure is [azure]: what a node learns from the Azure VM it runs on. With
// scheduled_events, an announced maintenance of this VM (Azure's Scheduled
// Events, from the Instance Metadata Service) becomes a planned switchover:
// the active node hands the role to a healthy peer (or steps down) and the
// node stays out of candidacy until the event is over. Restart to change.
type Azure struct {
	// ScheduledEvents watches the metadata service's scheduled events.
	// Default true with lease.backend = "azblob" (a node on Azure), false
	// otherwise.
	ScheduledEvents *bool `toml:"scheduled_events"`
	// IMDSURL is the Instance Metadata Service's address (an absolute
	// http:// URL without a path). Default "http://169.254.169.254".
	IMDSURL string `toml:"imds_url"`
	// StepDownOn are the event types that make the node step down and stay
	// out of candidacy: "Freeze", "Reboot", "Redeploy", "Preempt",
	// "Terminate". Default all five.
	StepDownOn []string `toml:"step_down_on"`
	// Approve asks Azure to start an event early once this node is out of
	// candidacy and drained, for events that name this VM alone. Default
	// false (the event starts at its NotBefore time).
	Approve bool `toml:"approve"`
}

// WatchScheduledEvents reports whether scheduled_events is on.
func (a Azure) WatchScheduledEvents() bool { return a.ScheduledEvents != nil && *a.ScheduledEvents }

// azureDefaults fills [azure]; it needs lease.backend.
func (st *state) azureDefaults(c *Config) {
	a := &c.Azure
	if a.ScheduledEvents == nil {
		a.ScheduledEvents = ptr(c.Lease.Backend == "azblob")
	}
	setStr(&a.IMDSURL, schedevents.DefaultURL)
	if a.StepDownOn == nil {
		a.StepDownOn = slices.Clone(schedevents.Types)
	}
}

func (st *state) validateAzure(c *Config) {
	a := c.Azure
	if u, ok := st.httpURL("azure.imds_url", a.IMDSURL, false); ok {
		switch {
		case u.Scheme != "http":
			st.errorf("azure.imds_url", "%q must be an http:// URL: the metadata service does not speak HTTPS", a.IMDSURL)
		case u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
			st.errorf("azure.imds_url", "%q must be the service's address only, e.g. %q (no path, query or user)", a.IMDSURL, schedevents.DefaultURL)
		}
	}
	seen := map[string]bool{}
	for i, t := range a.StepDownOn {
		key := "azure.step_down_on"
		switch {
		case slices.Contains(schedevents.Types, t):
			if seen[t] {
				st.errorf(key, "%q is listed twice", t)
			}
			seen[t] = true
		default:
			hint := ""
			for _, k := range schedevents.Types {
				if strings.EqualFold(k, t) {
					hint = " (did you mean " + strconv.Quote(k) + "?)"
				}
			}
			st.errorf(key, "entry %d %q is not an event type: one of %s%s", i, t, quoteList(schedevents.Types), hint)
		}
	}
	if a.WatchScheduledEvents() && len(a.StepDownOn) == 0 {
		st.errorf("azure.step_down_on", "is empty: no event would be acted on; set azure.scheduled_events = false to turn the watcher off")
	}
	if a.Approve && !a.WatchScheduledEvents() {
		st.errorf("azure.approve", "true needs azure.scheduled_events = true")
	}
}
