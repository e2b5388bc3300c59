package schedevents

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeIMDS is a metadata service: the VM's name, a scheduled events
// document the test sets, and the approvals it received.
type fakeIMDS struct {
	*httptest.Server
	mu        sync.Mutex
	name      string
	doc       string // the body of GET scheduledevents
	code      int    // its status; 0: 200
	requests  int
	noHeader  int      // requests without "Metadata: true"
	approvals []string // bodies of POST scheduledevents
	versions  map[string]string
}

func newFakeIMDS(t *testing.T, name string) *fakeIMDS {
	f := &fakeIMDS{name: name, doc: `{"DocumentIncarnation": 1, "Events": []}`, versions: map[string]string{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeIMDS) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	f.versions[r.Method+" "+r.URL.Path] = r.URL.Query().Get("api-version")
	if r.Header.Get("Metadata") != "true" {
		f.noHeader++
		http.Error(w, `{"error":"Bad request. Required metadata header not specified"}`, http.StatusBadRequest)
		return
	}
	switch {
	case r.Method == "GET" && r.URL.Path == "/metadata/instance/compute/name" && r.URL.Query().Get("format") == "text":
		io.WriteString(w, f.name)
	case r.Method == "GET" && r.URL.Path == "/metadata/scheduledevents":
		if f.code != 0 {
			w.WriteHeader(f.code)
		}
		io.WriteString(w, f.doc)
	case r.Method == "POST" && r.URL.Path == "/metadata/scheduledevents":
		b, _ := io.ReadAll(r.Body)
		f.approvals = append(f.approvals, string(b))
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeIMDS) set(doc string, code int) {
	f.mu.Lock()
	f.doc, f.code = doc, code
	f.mu.Unlock()
}

type ev struct{ id, typ, status, notBefore string }

// eventsDoc is a document whose events name the given resources.
func eventsDoc(inc int, resources []string, evs ...ev) string {
	var list []map[string]any
	for _, e := range evs {
		list = append(list, map[string]any{
			"EventId": e.id, "EventType": e.typ, "ResourceType": "VirtualMachine", "Resources": resources,
			"EventStatus": e.status, "NotBefore": e.notBefore, "Description": "Host server is undergoing maintenance.",
			"EventSource": "Platform", "DurationInSeconds": 5,
		})
	}
	if list == nil {
		list = []map[string]any{}
	}
	b, _ := json.Marshal(map[string]any{"DocumentIncarnation": inc, "Events": list})
	return string(b)
}

func newWatcher(t *testing.T, o Options) (*Watcher, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	w, err := New(o, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.tr.CloseIdleConnections)
	return w, logs
}

func ids(es []Event) string {
	var s []string
	for _, e := range es {
		s = append(s, e.ID+"/"+e.Type+"/"+e.Status)
	}
	return strings.Join(s, ",")
}

// TestLifecycle: an event for this VM appears, starts and goes; events for
// other VMs and of unwatched types are ignored; the name comes from IMDS and
// matches case-insensitively; every request carries the Metadata header.
func TestLifecycle(t *testing.T) {
	imds := newFakeIMDS(t, "VM-A")
	var changes []Change
	w, logs := newWatcher(t, Options{URL: imds.URL, Types: []string{Reboot, Redeploy},
		OnChange: func(c Change) { changes = append(changes, c) }})
	ctx := context.Background()
	changed := w.Changed()

	if err := w.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if w.VMName() != "VM-A" || len(w.Pending()) != 0 {
		t.Fatalf("vm %q pending %v", w.VMName(), w.Pending())
	}
	select {
	case <-changed:
		t.Fatal("Changed fired without a change")
	default:
	}

	const nb = "Mon, 19 Sep 2016 18:29:47 GMT"
	doc := eventsDoc(2, []string{"vm-a"}, ev{"E1", "Reboot", "Scheduled", nb}, ev{"E2", "Freeze", "Scheduled", nb})
	other := eventsDoc(2, []string{"vm-b"}, ev{"E3", "Reboot", "Scheduled", nb})
	// Two documents merged: E1 and E2 for vm-a, E3 for vm-b only.
	var d1, d2 map[string]any
	json.Unmarshal([]byte(doc), &d1)
	json.Unmarshal([]byte(other), &d2)
	d1["Events"] = append(d1["Events"].([]any), d2["Events"].([]any)...)
	b, _ := json.Marshal(d1)
	imds.set(string(b), 0)
	if err := w.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	p := w.Pending()
	if ids(p) != "E1/Reboot/Scheduled" {
		t.Fatalf("pending %s, want only E1 (E2 is a Freeze, not watched; E3 is vm-b's)", ids(p))
	}
	if want, _ := time.Parse(time.RFC1123, nb); !p[0].NotBefore.Equal(want) || p[0].DurationSeconds != 5 || p[0].Source != "Platform" {
		t.Errorf("event fields: %+v", p[0])
	}
	select {
	case <-changed:
	default:
		t.Fatal("Changed did not fire for a new event")
	}
	if len(changes) != 1 || changes[0].Kind != Appeared || changes[0].Event.ID != "E1" {
		t.Fatalf("changes %+v", changes)
	}
	if n := logs.FilterMessage("Azure scheduled event for this VM ignored: its type is not watched").Len(); n != 1 {
		t.Errorf("the unwatched Freeze logged %d times, want 1", n)
	}
	w.Poll(ctx) // the same document again: nothing changes, nothing logged again
	if len(changes) != 1 || logs.FilterMessage("Azure scheduled event for this VM ignored: its type is not watched").Len() != 1 {
		t.Errorf("a repeated document changed something: %+v", changes)
	}

	imds.set(eventsDoc(3, []string{"vm-a"}, ev{"E1", "Reboot", "Started", ""}), 0)
	if err := w.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if p := w.Pending(); ids(p) != "E1/Reboot/Started" || !p[0].NotBefore.IsZero() {
		t.Fatalf("pending %+v", p)
	}
	if len(changes) != 2 || changes[1].Kind != StatusChanged || changes[1].From != "Scheduled" {
		t.Fatalf("changes %+v", changes)
	}

	imds.set(eventsDoc(4, []string{"vm-a"}), 0)
	if err := w.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if len(w.Pending()) != 0 || len(changes) != 3 || changes[2].Kind != Gone || changes[2].Event.ID != "E1" {
		t.Fatalf("pending %v changes %+v", w.Pending(), changes)
	}
	if st := w.State(); !st.Up || st.Incarnation != 4 || st.LastError != "" {
		t.Errorf("state %+v", st)
	}
	imds.mu.Lock()
	defer imds.mu.Unlock()
	if imds.noHeader != 0 || imds.requests < 5 {
		t.Errorf("%d of %d requests lacked the Metadata header", imds.noHeader, imds.requests)
	}
	if v := imds.versions["GET /metadata/scheduledevents"]; v != "2020-07-01" {
		t.Errorf("api-version %q", v)
	}
	if v := imds.versions["GET /metadata/instance/compute/name"]; v != "2021-02-01" {
		t.Errorf("name api-version %q", v)
	}
}

// TestBadAnswersChangeNothing: malformed JSON, an error status and an
// unreachable service keep the pending events as they were, and each kind
// of failure is logged once, not once per poll.
func TestBadAnswersChangeNothing(t *testing.T) {
	imds := newFakeIMDS(t, "vm-a")
	var changes int
	w, logs := newWatcher(t, Options{URL: imds.URL, OnChange: func(Change) { changes++ }})
	ctx := context.Background()
	imds.set(eventsDoc(1, []string{"vm-a"}, ev{"E1", "Redeploy", "Scheduled", "Mon, 19 Sep 2016 18:29:47 GMT"}), 0)
	if err := w.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	warn := func() int {
		return logs.FilterMessageSnippet("no usable answer from the metadata service").Len()
	}
	for _, c := range []struct {
		name, doc string
		code      int
		warns     int
	}{
		{"not JSON", `{"DocumentIncarnation": 2, "Events": [`, 0, 1},
		{"not JSON again", `<html>proxy error</html>`, 0, 1},
		{"no Events array", `{"DocumentIncarnation": 2}`, 0, 1},
		{"wrong type", `{"DocumentIncarnation": 2, "Events": {"EventId": "x"}}`, 0, 1},
		{"500", `busy`, 500, 2},
		{"500 again", `busy`, 500, 2},
	} {
		imds.set(c.doc, c.code)
		if err := w.Poll(ctx); err == nil {
			t.Fatalf("%s: no error", c.name)
		}
		if ids(w.Pending()) != "E1/Redeploy/Scheduled" {
			t.Fatalf("%s: pending changed to %s", c.name, ids(w.Pending()))
		}
		if got := warn(); got != c.warns {
			t.Errorf("%s: %d warnings so far, want %d", c.name, got, c.warns)
		}
		if st := w.State(); st.Up || st.LastError == "" {
			t.Errorf("%s: state %+v", c.name, st)
		}
	}
	imds.set(eventsDoc(3, []string{"vm-a"}, ev{"E1", "Redeploy", "Scheduled", "Mon, 19 Sep 2016 18:29:47 GMT"}), 0)
	if err := w.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if n := logs.FilterMessage("Azure scheduled events: the metadata service answers again").Len(); n != 1 {
		t.Errorf("recovery logged %d times", n)
	}
	if changes != 1 {
		t.Errorf("%d changes, want 1 (the first appearance)", changes)
	}

	// Unreachable: the service goes away.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()
	w.base = dead
	for range 3 {
		if err := w.Poll(ctx); err == nil {
			t.Fatal("no error from a closed port")
		}
	}
	if got := logs.FilterMessageSnippet("no usable answer").FilterField(zap.String("kind", "unreachable")).Len(); got != 1 {
		t.Errorf("unreachable logged %d times over 3 polls, want 1", got)
	}
	if ids(w.Pending()) != "E1/Redeploy/Scheduled" || changes != 1 {
		t.Errorf("unreachable changed the pending events: %s", ids(w.Pending()))
	}
}

// TestNameUnknownUntilIMDSAnswers: without the VM's name nothing is pending,
// whatever the document says; the name is asked again at the next poll.
func TestNameUnknownUntilIMDSAnswers(t *testing.T) {
	imds := newFakeIMDS(t, "")
	w, _ := newWatcher(t, Options{URL: imds.URL})
	imds.set(eventsDoc(1, []string{""}, ev{"E1", "Reboot", "Scheduled", ""}), 0)
	if err := w.Poll(context.Background()); err == nil || w.VMName() != "" || len(w.Pending()) != 0 {
		t.Fatalf("err %v vm %q pending %v", err, w.VMName(), w.Pending())
	}
	imds.mu.Lock()
	imds.name = "vm-a\n"
	imds.mu.Unlock()
	imds.set(eventsDoc(1, []string{"vm-a"}, ev{"E1", "Reboot", "Scheduled", ""}), 0)
	if err := w.Poll(context.Background()); err != nil || w.VMName() != "vm-a" || len(w.Pending()) != 1 {
		t.Fatalf("err %v vm %q pending %v", err, w.VMName(), w.Pending())
	}
}

// TestApprove posts exactly {"StartRequests": [{"EventId": ID}]} with the
// Metadata header; an error status is an error.
func TestApprove(t *testing.T) {
	imds := newFakeIMDS(t, "vm-a")
	w, _ := newWatcher(t, Options{URL: imds.URL + "/", VMName: "vm-a"})
	if err := w.Approve(context.Background(), "602d9444-d2cd-49c7-8624-8643e7171297"); err != nil {
		t.Fatal(err)
	}
	imds.mu.Lock()
	got := imds.approvals
	noHeader := imds.noHeader
	version := imds.versions["POST /metadata/scheduledevents"]
	imds.mu.Unlock()
	if len(got) != 1 || noHeader != 0 || version != "2020-07-01" {
		t.Fatalf("approvals %q, %d without header, api-version %q", got, noHeader, version)
	}
	var body map[string][]map[string]string
	if err := json.Unmarshal([]byte(got[0]), &body); err != nil {
		t.Fatal(err)
	}
	if len(body) != 1 || len(body["StartRequests"]) != 1 || len(body["StartRequests"][0]) != 1 ||
		body["StartRequests"][0]["EventId"] != "602d9444-d2cd-49c7-8624-8643e7171297" {
		t.Fatalf("body %s", got[0])
	}
	// Without the header the service answers 400: make the fake refuse
	// everything to see the error path.
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad request", http.StatusBadRequest)
	}))
	defer refuse.Close()
	w2, _ := newWatcher(t, Options{URL: refuse.URL, VMName: "vm-a"})
	if err := w2.Approve(context.Background(), "x"); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("err %v", err)
	}
}

// TestRunPollsUntilCancelled: Run polls at once and every Interval, Changed
// fires for a change, and Run returns when its context ends.
func TestRunPollsUntilCancelled(t *testing.T) {
	imds := newFakeIMDS(t, "vm-a")
	w, _ := newWatcher(t, Options{URL: imds.URL, Interval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	ch := w.Changed()
	imds.set(eventsDoc(2, []string{"vm-a"}, ev{"E1", "Preempt", "Scheduled", ""}), 0)
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no change seen")
	}
	if p := w.Pending(); len(p) != 1 || p[0].Type != Preempt {
		t.Fatalf("pending %+v", p)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}

// TestTimeouts: calls may take FirstTimeout until the service answered
// once, then Timeout.
func TestTimeouts(t *testing.T) {
	slow := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metadata/scheduledevents" {
			select {
			case <-slow:
			case <-r.Context().Done():
				return
			}
		}
		io.WriteString(w, `{"DocumentIncarnation": 1, "Events": []}`)
	}))
	defer srv.Close()
	defer close(slow)
	w, _ := newWatcher(t, Options{URL: srv.URL, VMName: "vm-a", FirstTimeout: 300 * time.Millisecond, Timeout: 50 * time.Millisecond})
	t0 := time.Now()
	if err := w.Poll(context.Background()); err == nil {
		t.Fatal("no timeout")
	}
	if d := time.Since(t0); d < 250*time.Millisecond {
		t.Errorf("first call gave up after %v, want the first-call timeout (300ms)", d)
	}
	w.mu.Lock()
	w.answered = true
	w.mu.Unlock()
	t0 = time.Now()
	w.Poll(context.Background())
	if d := time.Since(t0); d > 250*time.Millisecond {
		t.Errorf("a later call took %v, want the short timeout (50ms)", d)
	}
}

func TestNewChecksOptions(t *testing.T) {
	for _, o := range []Options{{URL: "https://169.254.169.254"}, {URL: "169.254.169.254"}, {Types: []string{"reboot"}}} {
		if _, err := New(o, zap.NewNop()); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	if _, err := New(Options{}, nil); err == nil {
		t.Error("nil logger accepted")
	}
}

func TestOnly(t *testing.T) {
	if !(Event{Resources: []string{"VM-A"}}).Only("vm-a") || (Event{Resources: []string{"vm-a", "vm-b"}}).Only("vm-a") {
		t.Fatal("Only")
	}
}
