package schedevents

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// The event types of API version 2020-07-01.
const (
	Freeze    = "Freeze"    // the VM pauses for a few seconds (memory-preserving maintenance, live migration)
	Reboot    = "Reboot"    // the VM restarts; memory is lost
	Redeploy  = "Redeploy"  // the VM moves to another host; ephemeral disks are lost
	Preempt   = "Preempt"   // the Spot VM is evicted
	Terminate = "Terminate" // the VM is deleted (scale set scale-in with termination notification)
)

// Types lists every event type, in the order Azure's documentation does.
var Types = []string{Freeze, Reboot, Redeploy, Preempt, Terminate}

// The statuses of an event. An event that is over leaves the list.
const (
	StatusScheduled = "Scheduled"
	StatusStarted   = "Started"
)

const (
	// DefaultURL is the Instance Metadata Service's address inside every
	// Azure VM.
	DefaultURL = "http://169.254.169.254"
	// APIVersion is the Scheduled Events API version used for reading
	// and approving events.
	APIVersion = "2020-07-01"
	// nameAPIVersion is the instance metadata API version for the VM's
	// name.
	nameAPIVersion = "2021-02-01"
	// DefaultInterval is the time between two polls. Microsoft recommends
	// once a second: some events come with 30 seconds' notice.
	DefaultInterval = time.Second
	// FirstCallTimeout bounds every call until the service first answered:
	// the first request turns Scheduled Events on for the VM and may take
	// up to two minutes.
	FirstCallTimeout = 150 * time.Second
	// CallTimeout bounds every later call, and Approve.
	CallTimeout = 5 * time.Second
	// maxBody is the most of an answer that is read.
	maxBody = 1 << 20
)

// Event is one scheduled event that affects this VM.
type Event struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	Status string `json:"status"`
	// NotBefore is the earliest start; zero once the event started (Azure
	// leaves it blank then) or when it did not parse.
	NotBefore time.Time `json:"not_before,omitzero"`
	Resources []string  `json:"resources"`
	Source    string    `json:"source,omitempty"` // "Platform" or "User"
	// Description is Azure's text, e.g. "Host server is undergoing
	// maintenance."
	Description string `json:"description,omitempty"`
	// DurationSeconds is the expected interruption; -1 when unknown.
	DurationSeconds int `json:"duration_seconds"`
	// Seen is when this Watcher first saw the event.
	Seen time.Time `json:"seen"`
}

// Only reports whether vm is the only resource the event names: approving
// it then affects no other VM.
func (e Event) Only(vm string) bool {
	return len(e.Resources) == 1 && strings.EqualFold(e.Resources[0], vm)
}

// ChangeKind says how the set of pending events changed.
type ChangeKind int

const (
	Appeared      ChangeKind = iota + 1 // a new event for this VM
	StatusChanged                       // an event's status changed (Scheduled → Started)
	Gone                                // the event left the list: it is over (or was cancelled)
)

func (k ChangeKind) String() string {
	switch k {
	case Appeared:
		return "appeared"
	case StatusChanged:
		return "status changed"
	case Gone:
		return "gone"
	}
	return "unknown"
}

// Change is one change of the pending events.
type Change struct {
	Kind  ChangeKind
	Event Event  // as now; for Gone, as last seen
	From  string // StatusChanged: the previous status
}

// Options configures a Watcher.
type Options struct {
	// URL is the metadata service's base URL; "" means DefaultURL.
	URL string
	// Types are the event types to watch; nil means Types. Others are
	// ignored (logged once per event).
	Types []string
	// VMName is this VM's name as events name it; "" asks the metadata
	// service (compute/name) until it answers.
	VMName string
	// Interval is the time between polls; 0 means DefaultInterval.
	Interval time.Duration
	// FirstTimeout and Timeout bound the calls before and after the first
	// answer; 0 means FirstCallTimeout and CallTimeout.
	FirstTimeout, Timeout time.Duration
	// OnChange, if set, is called on the polling goroutine after each
	// change, with the Watcher's lock released. It must not block long.
	OnChange func(Change)
}

// State is what the Watcher knows, for /status.
type State struct {
	VMName      string    // "" until known
	Up          bool      // the last poll got a document
	LastError   string    // why the last poll failed; "" when Up
	LastPoll    time.Time // when the last poll ended (zero: none yet)
	Incarnation int64     // DocumentIncarnation of the last document
	Pending     []Event
}

// Watcher polls the Scheduled Events endpoint; see the package doc.
type Watcher struct {
	o      Options
	base   string
	tr     *http.Transport
	client *http.Client
	log    *zap.Logger

	mu       sync.Mutex
	vm       string
	pending  map[string]Event
	ignored  map[string]bool // events of this VM of unwatched types, logged once
	up       bool
	lastErr  string
	lastPoll time.Time
	inc      int64
	answered bool   // a call got an answer: later calls use Timeout
	failKind string // the kind of failure last logged; "" while healthy
	changed  chan struct{}
}

// New checks o and returns a Watcher that does not poll yet (see Run).
func New(o Options, log *zap.Logger) (*Watcher, error) {
	if log == nil {
		return nil, errors.New("schedevents: nil logger")
	}
	if o.URL == "" {
		o.URL = DefaultURL
	}
	u, err := url.Parse(o.URL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("schedevents: %q is not an absolute http:// URL", o.URL)
	}
	if o.Types == nil {
		o.Types = Types
	}
	for _, t := range o.Types {
		if !slices.Contains(Types, t) {
			return nil, fmt.Errorf("schedevents: unknown event type %q (known: %s)", t, strings.Join(Types, ", "))
		}
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.FirstTimeout <= 0 {
		o.FirstTimeout = FirstCallTimeout
	}
	if o.Timeout <= 0 {
		o.Timeout = CallTimeout
	}
	// IMDS must be reached directly: no proxy from the environment.
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: o.Timeout}).DialContext,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     30 * time.Second,
	}
	return &Watcher{
		o:    o,
		base: strings.TrimRight(o.URL, "/"),
		tr:   tr,
		client: &http.Client{
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		log:     log.Named("schedevents"),
		vm:      o.VMName,
		pending: map[string]Event{},
		ignored: map[string]bool{},
		changed: make(chan struct{}),
	}, nil
}

// Run polls until ctx ends: at once, then Interval after each poll ends.
// It closes its idle connections before it returns.
func (w *Watcher) Run(ctx context.Context) {
	defer w.tr.CloseIdleConnections()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.Poll(ctx)
		t.Reset(w.o.Interval)
	}
}

// Changed is closed at the next change of the pending events (a latest-value
// signal: call it again for the one after).
func (w *Watcher) Changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed
}

// Pending returns the pending events, started ones first, then by
// NotBefore and ID.
func (w *Watcher) Pending() []Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pendingLocked()
}

func (w *Watcher) pendingLocked() []Event {
	out := make([]Event, 0, len(w.pending))
	for _, e := range w.pending {
		e.Resources = slices.Clone(e.Resources)
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Event) int {
		if sa, sb := a.Status == StatusStarted, b.Status == StatusStarted; sa != sb {
			if sa {
				return -1
			}
			return 1
		}
		if c := a.NotBefore.Compare(b.NotBefore); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// VMName is this VM's name, "" until known.
func (w *Watcher) VMName() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.vm
}

// State returns what the Watcher knows.
func (w *Watcher) State() State {
	w.mu.Lock()
	defer w.mu.Unlock()
	return State{VMName: w.vm, Up: w.up, LastError: w.lastErr, LastPoll: w.lastPoll,
		Incarnation: w.inc, Pending: w.pendingLocked()}
}

// document is the Scheduled Events answer. Events is a pointer so that an
// answer without the array is told from an empty one.
type document struct {
	DocumentIncarnation int64       `json:"DocumentIncarnation"`
	Events              *[]rawEvent `json:"Events"`
}

type rawEvent struct {
	EventID           string   `json:"EventId"`
	EventType         string   `json:"EventType"`
	ResourceType      string   `json:"ResourceType"`
	Resources         []string `json:"Resources"`
	EventStatus       string   `json:"EventStatus"`
	NotBefore         string   `json:"NotBefore"`
	Description       string   `json:"Description"`
	EventSource       string   `json:"EventSource"`
	DurationInSeconds *int     `json:"DurationInSeconds"`
}

// failure is a failed poll: kind groups failures for logging once.
type failure struct {
	kind string // "unreachable", "status", "malformed", "name"
	err  error
}

func (f *failure) Error() string { return f.err.Error() }

// Poll asks the service once and applies the answer. Run calls it; tests
// call it directly. It returns the failure, if any.
func (w *Watcher) Poll(ctx context.Context) error {
	w.mu.Lock()
	timeout, vm := w.o.FirstTimeout, w.vm
	if w.answered {
		timeout = w.o.Timeout
	}
	w.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	if vm == "" {
		name, err := w.vmName(cctx)
		if err != nil {
			return w.fail(ctx, err)
		}
		w.mu.Lock()
		w.vm = name
		w.mu.Unlock()
		w.log.Info("watching Azure scheduled events for this VM", zap.String("vm", name), zap.Strings("types", w.o.Types))
	}
	var doc document
	body, err := w.get(cctx, "/metadata/scheduledevents?api-version="+APIVersion)
	if err == nil {
		if jerr := json.Unmarshal(body, &doc); jerr != nil {
			err = &failure{"malformed", fmt.Errorf("the answer is not a scheduled events document: %v", jerr)}
		} else if doc.Events == nil {
			err = &failure{"malformed", errors.New("the answer has no Events array")}
		}
	}
	if err != nil {
		return w.fail(ctx, err)
	}
	w.apply(doc)
	return nil
}

// vmName asks the metadata service for this VM's name.
func (w *Watcher) vmName(ctx context.Context) (string, error) {
	body, err := w.get(ctx, "/metadata/instance/compute/name?api-version="+nameAPIVersion+"&format=text")
	if err != nil {
		return "", err
	}
	name := strings.TrimSpace(string(body))
	if name == "" || strings.ContainsAny(name, "\n{") {
		return "", &failure{"malformed", fmt.Errorf("the VM name from compute/name is not a name: %q", truncate(name))}
	}
	return name, nil
}

// get makes one GET with the Metadata header and returns a 200 answer's
// body.
func (w *Watcher) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.base+path, nil)
	if err != nil {
		return nil, &failure{"unreachable", err}
	}
	req.Header.Set("Metadata", "true")
	res, err := w.client.Do(req)
	if err != nil {
		return nil, &failure{"unreachable", fmt.Errorf("metadata service unreachable: %w", err)}
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxBody+1))
	if err != nil {
		return nil, &failure{"unreachable", fmt.Errorf("reading the metadata service's answer: %w", err)}
	}
	w.mu.Lock()
	w.answered = true
	w.mu.Unlock()
	if res.StatusCode != http.StatusOK {
		return nil, &failure{"status", fmt.Errorf("metadata service answered %s: %s", res.Status, truncate(string(body)))}
	}
	if len(body) > maxBody {
		return nil, &failure{"malformed", fmt.Errorf("the answer is longer than %d bytes", maxBody)}
	}
	return body, nil
}

func truncate(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// fail records a failed poll; it logs only when the kind of failure
// changed. A poll cut short by the end of ctx is not a failure.
func (w *Watcher) fail(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	kind := "unreachable"
	var f *failure
	if errors.As(err, &f) {
		kind = f.kind
	}
	w.mu.Lock()
	w.up, w.lastErr, w.lastPoll = false, err.Error(), time.Now()
	logIt := w.failKind != kind
	w.failKind = kind
	n := len(w.pending)
	w.mu.Unlock()
	if logIt {
		w.log.Warn("Azure scheduled events: no usable answer from the metadata service; pending events stay as they were until it answers",
			zap.String("kind", kind), zap.Int("pending", n), zap.Error(err))
	}
	return err
}

// apply makes doc the pending set and reports the changes.
func (w *Watcher) apply(doc document) {
	now := time.Now()
	var changes []Change
	var ignored []Event
	w.mu.Lock()
	recovered := w.failKind != ""
	w.up, w.lastErr, w.lastPoll, w.failKind, w.inc = true, "", now, "", doc.DocumentIncarnation
	next := map[string]Event{}
	for _, r := range *doc.Events {
		if r.EventID == "" || !names(r.Resources, w.vm) {
			continue
		}
		e := Event{
			ID: r.EventID, Type: canonical(r.EventType), Status: r.EventStatus,
			Resources: slices.Clone(r.Resources), Source: r.EventSource, Description: r.Description,
			DurationSeconds: -1, Seen: now,
		}
		if r.DurationInSeconds != nil {
			e.DurationSeconds = *r.DurationInSeconds
		}
		if t, err := http.ParseTime(strings.TrimSpace(r.NotBefore)); err == nil {
			e.NotBefore = t.UTC()
		}
		if !slices.Contains(w.o.Types, e.Type) {
			if !w.ignored[e.ID] {
				w.ignored[e.ID] = true
				ignored = append(ignored, e)
			}
			continue
		}
		if old, ok := w.pending[e.ID]; ok {
			e.Seen = old.Seen
			if old.Status != e.Status {
				changes = append(changes, Change{Kind: StatusChanged, Event: e, From: old.Status})
			}
		} else {
			changes = append(changes, Change{Kind: Appeared, Event: e})
		}
		next[e.ID] = e
	}
	for id, old := range w.pending {
		if _, ok := next[id]; !ok {
			changes = append(changes, Change{Kind: Gone, Event: old})
		}
	}
	for id := range w.ignored {
		if !listed(*doc.Events, id) {
			delete(w.ignored, id)
		}
	}
	w.pending = next
	if len(changes) > 0 {
		close(w.changed)
		w.changed = make(chan struct{})
	}
	w.mu.Unlock()

	if recovered {
		w.log.Info("Azure scheduled events: the metadata service answers again", zap.Int("pending", len(next)))
	}
	for _, e := range ignored {
		w.log.Info("Azure scheduled event for this VM ignored: its type is not watched",
			eventFields(e, zap.Strings("watched", w.o.Types))...)
	}
	for _, c := range changes {
		msg := "Azure scheduled event announced for this VM"
		switch c.Kind {
		case StatusChanged:
			msg = "Azure scheduled event changed status"
		case Gone:
			msg = "Azure scheduled event is over (gone from the list)"
		}
		extra := []zap.Field{}
		if c.Kind == StatusChanged {
			extra = append(extra, zap.String("from", c.From))
		}
		w.log.Info(msg, eventFields(c.Event, extra...)...)
		if w.o.OnChange != nil {
			w.o.OnChange(c)
		}
	}
}

// EventFields are the log fields of an event: id, type, status, NotBefore,
// resources, source, expected duration.
func EventFields(e Event) []zap.Field { return eventFields(e) }

func eventFields(e Event, extra ...zap.Field) []zap.Field {
	f := []zap.Field{zap.String("event_id", e.ID), zap.String("event_type", e.Type), zap.String("event_status", e.Status)}
	if e.NotBefore.IsZero() {
		f = append(f, zap.String("not_before", ""))
	} else {
		f = append(f, zap.Time("not_before", e.NotBefore))
	}
	f = append(f, zap.Strings("resources", e.Resources), zap.String("source", e.Source), zap.Int("duration_seconds", e.DurationSeconds))
	return append(f, extra...)
}

// canonical spells a known event type as Azure documents it.
func canonical(t string) string {
	for _, k := range Types {
		if strings.EqualFold(k, t) {
			return k
		}
	}
	return t
}

func names(resources []string, vm string) bool {
	for _, r := range resources {
		if strings.EqualFold(strings.TrimSpace(r), vm) {
			return true
		}
	}
	return false
}

func listed(events []rawEvent, id string) bool {
	for _, r := range events {
		if r.EventID == id {
			return true
		}
	}
	return false
}

// Approve asks Azure to start the event now instead of at NotBefore. It
// affects every VM the event names (Event.Only tells whether that is this
// VM alone). Azure answers 200 for any valid event ID, also one already
// approved. Without a deadline in ctx the call is bounded by the Watcher's
// call timeout.
func (w *Watcher) Approve(ctx context.Context, eventID string) error {
	if eventID == "" {
		return errors.New("approve: empty event id")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.o.Timeout)
		defer cancel()
	}
	body, err := json.Marshal(startRequests{StartRequests: []startRequest{{EventID: eventID}}})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.base+"/metadata/scheduledevents?api-version="+APIVersion, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Metadata", "true")
	req.Header.Set("Content-Type", "application/json")
	res, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("approve event %s: metadata service unreachable: %w", eventID, err)
	}
	defer res.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("approve event %s: metadata service answered %s: %s", eventID, res.Status, truncate(string(answer)))
	}
	return nil
}

type startRequests struct {
	StartRequests []startRequest `json:"StartRequests"`
}

type startRequest struct {
	EventID string `json:"EventId"`
}
