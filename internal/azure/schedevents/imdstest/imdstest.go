// Package imdstest is a fake of Azure's Instance Metadata Service for
// tests: the scheduled events document, the VM's name, and approvals.
package imdstest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Events is the scheduled events document every fake metadata service of
// a test serves (Azure delivers an availability set's events to all its
// VMs); each service has its own VM name (Serve). The zero value serves no
// events.
type Events struct {
	mu        sync.Mutex
	inc       int
	events    []map[string]any
	approvals []string
}

// Set replaces the events (a new DocumentIncarnation).
func (d *Events) Set(events ...map[string]any) {
	d.mu.Lock()
	d.inc++
	d.events = events
	d.mu.Unlock()
}

// Approved returns the bodies of the approvals (POSTs) received so far.
func (d *Events) Approved() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.approvals...)
}

// Serve starts a fake metadata service for the VM named vm, stopped at the
// end of the test, and returns its base URL. Requests without the
// "Metadata: true" header get 400, as from Azure.
func (d *Events) Serve(t testing.TB, vm string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Metadata") != "true" {
			http.Error(w, "Required metadata header not specified", http.StatusBadRequest)
			return
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		switch {
		case r.URL.Path == "/metadata/instance/compute/name":
			io.WriteString(w, vm)
		case r.URL.Path == "/metadata/scheduledevents" && r.Method == http.MethodPost:
			b, _ := io.ReadAll(r.Body)
			d.approvals = append(d.approvals, string(b))
		case r.URL.Path == "/metadata/scheduledevents":
			evs := d.events
			if evs == nil {
				evs = []map[string]any{}
			}
			json.NewEncoder(w).Encode(map[string]any{"DocumentIncarnation": d.inc, "Events": evs})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// Event is one scheduled event as Azure lists it: a platform maintenance
// of the VMs named in resources, 15 minutes ahead while Scheduled (Azure
// leaves NotBefore empty once Started).
func Event(id, typ, status string, resources ...string) map[string]any {
	nb := time.Now().Add(15 * time.Minute).UTC().Format(http.TimeFormat)
	if status == "Started" {
		nb = ""
	}
	return map[string]any{"EventId": id, "EventType": typ, "ResourceType": "VirtualMachine", "Resources": resources,
		"EventStatus": status, "NotBefore": nb, "Description": "Host server is undergoing maintenance.",
		"EventSource": "Platform", "DurationInSeconds": -1}
}
