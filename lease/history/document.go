package history

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Version is the schema version this package writes.
const Version = 1

// Bounds of a Document.
const (
	// MaxEntries is how many terms a Document keeps: the latest ones.
	MaxEntries = 1000
	// MaxPeriods is how many failsafe periods an Entry keeps: the latest.
	MaxPeriods = 100
	// MaxSize bounds what a Store reads: MaxEntries entries with long
	// reasons and their failsafe periods fit well within it.
	MaxSize = 8 << 20
	// maxText bounds a reason as stored.
	maxText = 300
)

// How a term started (Entry.Start).
const (
	StartAcquired = "acquired"
	// StartTakenOver: a restarted process took over the lease its dead
	// predecessor (same node) left held.
	StartTakenOver = "taken over from this node's previous process"
	// StartHandedOverBy is followed by the node that handed the lease over.
	StartHandedOverBy = "handed over by "
)

// How a term ended (Entry.End), as far as the writer knew. Released and
// Lost are prefixes; HandedOverTo is followed by the target's name.
const (
	EndReleased     = "released: "
	EndHandedOverTo = "handed over to "
	EndLost         = "lost: "
	// EndExpired is what the next holder records for a term that had no
	// end recorded: its holder neither released the lease nor said why it
	// lost it (a crash, a freeze, no storage, or a write that did not
	// make it).
	EndExpired = EndLost + "expired or the node crashed"
	// EndCrashTakenOver is what a restarted process records for its dead
	// predecessor's term when it took the lease over.
	EndCrashTakenOver = EndLost + "taken over after a crash by the node's restarted process"
	// endUnknown is for a term that had no end when a later term was
	// recorded, unless that later term is the next one.
	endUnknown = "unknown (superseded by term %d)"
)

// Document is what a Store keeps: the latest terms, ordered by term.
type Document struct {
	Version int     `json:"version"`
	Entries []Entry `json:"entries"`
}

// Entry is one term: one acquisition of the lease and how it ended.
type Entry struct {
	Term uint64 `json:"term"`
	// Node held the lease in this term.
	Node string `json:"node"`
	// AcquiredAt is the holder record's acquisition time (the storage's or
	// the holder's wall clock); zero when the start was never recorded.
	AcquiredAt time.Time `json:"acquired_at,omitzero"`
	// Start says how the term started: StartAcquired, StartTakenOver or
	// StartHandedOverBy + node ("" when the start was never recorded).
	Start string `json:"start,omitempty"`
	// EndedAt and End say when and how the term ended; empty while it
	// has not ended as far as any writer knew.
	EndedAt time.Time `json:"ended_at,omitzero"`
	End     string    `json:"end,omitempty"`
	// EndedBy names the node that recorded End: Node itself (it knew), or
	// the next holder (it inferred). "" when End was filled in because a
	// later term was recorded.
	EndedBy string `json:"ended_by,omitempty"`
	// Failsafe lists the periods in which the holder served on its peers'
	// promises because the storage did not answer.
	Failsafe []Period `json:"failsafe,omitempty"`
}

// Period is one failsafe period; End is zero while it lasts (or when its
// end was never recorded).
type Period struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end,omitzero"`
}

// ErrNewer is returned by Update when the stored document was written by
// a newer baton (a higher Version): it is not changed, so that nothing
// this version does not know is lost.
var ErrNewer = errors.New("history written by a newer baton")

// Decode parses a stored document. Empty data is an empty document.
func Decode(data []byte) (Document, error) {
	var d Document
	if len(strings.TrimSpace(string(data))) == 0 {
		return Document{Version: Version}, nil
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return Document{}, fmt.Errorf("corrupt history (remove it to start a new one): %w", err)
	}
	if d.Version == 0 {
		d.Version = Version
	}
	return d, nil
}

// encode serialises d for storage.
func encode(d *Document) ([]byte, error) {
	if d.Version > Version {
		return nil, ErrNewer
	}
	d.Version = Version
	b, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Last returns the latest n entries (all of them when n <= 0).
func (d Document) Last(n int) []Entry {
	if n <= 0 || n >= len(d.Entries) {
		return d.Entries
	}
	return d.Entries[len(d.Entries)-n:]
}

// Begin records that node acquired the lease in term at at, how (one of
// the Start forms). The entry of the previous term, if it has no end yet,
// is ended by inference: handed over to node when how says node got it
// from its holder, taken over after a crash when node took its own lease
// over, otherwise expired. Begin is idempotent.
func (d *Document) Begin(term uint64, node string, at time.Time, how string) {
	at = clean(at)
	d.dropReset(term, node, at)
	e := d.entry(term, node)
	if e.AcquiredAt.IsZero() {
		e.AcquiredAt = at
	}
	if e.Start == "" {
		e.Start = trim(how)
	}
	if prev := d.find(term - 1); term > 1 && prev != nil && prev.End == "" {
		prev.EndedAt, prev.EndedBy = at, node
		switch {
		case how == StartTakenOver && prev.Node == node:
			prev.End = EndCrashTakenOver
		case how == StartHandedOverBy+prev.Node:
			prev.End = EndHandedOverTo + node
		default:
			prev.End = EndExpired
		}
	}
	d.tidy()
}

// End records how node's term ended, at at. An end the holder itself
// records replaces one that another node inferred; otherwise the first
// recorded end stays. End is idempotent.
func (d *Document) End(term uint64, node string, at time.Time, how string) {
	e := d.entry(term, node)
	if e.End == "" || (e.EndedBy != e.Node && node == e.Node) {
		e.End, e.EndedAt, e.EndedBy = trim(how), clean(at), node
	}
	d.tidy()
}

// FailsafeStart records that node, holding term, started serving on its
// peers' promises at at. Idempotent.
func (d *Document) FailsafeStart(term uint64, node string, at time.Time) {
	at = clean(at)
	e := d.entry(term, node)
	for _, p := range e.Failsafe {
		if p.Start.Equal(at) {
			return
		}
	}
	e.Failsafe = append(e.Failsafe, Period{Start: at})
	d.tidy()
}

// FailsafeEnd ends the failsafe period of term that started at since.
// Idempotent; an unknown period is ignored.
func (d *Document) FailsafeEnd(term uint64, since, at time.Time) {
	e := d.find(term)
	if e == nil {
		return
	}
	since = clean(since)
	for i := range e.Failsafe {
		if p := &e.Failsafe[i]; p.Start.Equal(since) && p.End.IsZero() {
			p.End = clean(at)
		}
	}
}

// find returns the entry of term, or nil.
func (d *Document) find(term uint64) *Entry {
	i, ok := slices.BinarySearchFunc(d.Entries, term, func(e Entry, t uint64) int { return cmpTerm(e.Term, t) })
	if !ok {
		return nil
	}
	return &d.Entries[i]
}

// entry returns the entry of term, inserted in order (held by node) when
// missing.
func (d *Document) entry(term uint64, node string) *Entry {
	i, ok := slices.BinarySearchFunc(d.Entries, term, func(e Entry, t uint64) int { return cmpTerm(e.Term, t) })
	if !ok {
		d.Entries = slices.Insert(d.Entries, i, Entry{Term: term, Node: node})
	}
	if d.Entries[i].Node == "" {
		d.Entries[i].Node = node
	}
	return &d.Entries[i]
}

// resetSlack is how much later than the latest recorded acquisition a
// lower term must have been acquired for Begin to take it as a lease that
// was reset (wall clocks of different hosts may disagree a little).
const resetSlack = time.Minute

// dropReset drops the entries of an earlier lease when term shows that
// the lease was reset (its blob or file deleted: the terms start again at
// 1): the entry of term names another acquisition, or term is lower than
// the latest recorded one but acquired clearly later.
func (d *Document) dropReset(term uint64, node string, at time.Time) {
	if len(d.Entries) == 0 {
		return
	}
	reset := false
	if e := d.find(term); e != nil && !e.AcquiredAt.IsZero() {
		reset = e.Node != node || !e.AcquiredAt.Equal(at)
	} else if last := d.Entries[len(d.Entries)-1]; last.Term > term && !last.AcquiredAt.IsZero() {
		reset = at.After(last.AcquiredAt.Add(resetSlack))
	}
	if reset {
		d.Entries = slices.DeleteFunc(d.Entries, func(e Entry) bool { return e.Term >= term })
	}
}

// tidy keeps the invariants: ordered by term, every term but the latest
// ended, bounded.
func (d *Document) tidy() {
	slices.SortFunc(d.Entries, func(a, b Entry) int { return cmpTerm(a.Term, b.Term) })
	for i := range d.Entries {
		e := &d.Entries[i]
		if i < len(d.Entries)-1 && e.End == "" {
			e.End = fmt.Sprintf(endUnknown, e.Term+1)
		}
		if len(e.Failsafe) > MaxPeriods {
			e.Failsafe = slices.Delete(e.Failsafe, 0, len(e.Failsafe)-MaxPeriods)
		}
	}
	if len(d.Entries) > MaxEntries {
		d.Entries = slices.Delete(d.Entries, 0, len(d.Entries)-MaxEntries)
	}
}

func cmpTerm(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// clean drops the monotonic reading and the location: stored times are
// UTC instants, equal after a round trip through JSON.
func clean(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Round(0).UTC()
}

// trim bounds a reason, cutting at a character boundary.
func trim(s string) string {
	if len(s) <= maxText {
		return s
	}
	i := maxText
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}
