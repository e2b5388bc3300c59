package history

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

// summary renders the entries compactly for comparisons.
func summary(d Document) string {
	var b strings.Builder
	for _, e := range d.Entries {
		fmt.Fprintf(&b, "%d %s [%s] -> [%s] by %s", e.Term, e.Node, e.Start, e.End, e.EndedBy)
		for _, p := range e.Failsafe {
			fmt.Fprintf(&b, " fs(%s-%s)", p.Start.Format("05"), p.End.Format("05"))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestBeginInfersTheEndOfThePreviousTerm(t *testing.T) {
	var d Document
	d.Begin(1, "a", at(0), StartAcquired)
	d.End(1, "a", at(10), EndReleased+"step-down")
	d.Begin(2, "b", at(11), StartAcquired)
	// b crashed: a's next acquisition ends b's term.
	d.Begin(3, "a", at(30), StartAcquired)
	// a's process crashed and its restart took the lease over.
	d.Begin(4, "a", at(32), StartTakenOver)
	// a handed the lease to b; b's record arrives before a's own.
	d.Begin(5, "b", at(40), StartHandedOverBy+"a")
	want := `1 a [acquired] -> [released: step-down] by a
2 b [acquired] -> [lost: expired or the node crashed] by a
3 a [acquired] -> [lost: taken over after a crash by the node's restarted process] by a
4 a [taken over from this node's previous process] -> [handed over to b] by b
5 b [handed over by a] -> [] by 
`
	if got := summary(d); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if e := d.find(2); !e.EndedAt.Equal(at(30)) {
		t.Errorf("inferred end at %v, want the next acquisition %v", e.EndedAt, at(30))
	}
}

func TestHolderEndReplacesAnInferredOne(t *testing.T) {
	var d Document
	d.Begin(1, "a", at(0), StartAcquired)
	d.Begin(2, "b", at(1), StartAcquired)    // a's release record is late
	d.End(1, "a", at(0), EndReleased+"stop") // ... and replaces b's guess
	d.End(1, "b", at(5), "whatever")         // another node never replaces it
	d.End(2, "b", at(9), EndLost+"renew deadline passed")
	d.End(2, "b", at(9), EndReleased+"other") // the first own end stays
	want := `1 a [acquired] -> [released: stop] by a
2 b [acquired] -> [lost: renew deadline passed] by b
`
	if got := summary(d); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestGapsAndLateStarts(t *testing.T) {
	var d Document
	d.Begin(1, "a", at(0), StartAcquired)
	d.Begin(4, "b", at(20), StartAcquired) // terms 2 and 3 never recorded
	d.Begin(2, "a", at(5), StartAcquired)  // a late start of term 2
	d.End(2, "a", at(8), EndReleased+"maintenance")
	want := `1 a [acquired] -> [unknown (superseded by term 2)] by 
2 a [acquired] -> [released: maintenance] by a
4 b [acquired] -> [] by 
`
	if got := summary(d); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestRecordsAreIdempotent(t *testing.T) {
	var d Document
	apply := func() {
		d.Begin(7, "a", at(0), StartAcquired)
		d.FailsafeStart(7, "a", at(3))
		d.FailsafeEnd(7, at(3), at(6))
		d.FailsafeStart(7, "a", at(8))
		d.End(7, "a", at(9), EndReleased+"stop")
		d.FailsafeEnd(7, at(8), at(9))
	}
	apply()
	once := summary(d)
	apply()
	if twice := summary(d); twice != once {
		t.Errorf("applied twice:\n%s\nonce:\n%s", twice, once)
	}
	if want := "7 a [acquired] -> [released: stop] by a fs(03-06) fs(08-09)\n"; once != want {
		t.Errorf("got %s want %s", once, want)
	}
}

func TestBounds(t *testing.T) {
	var d Document
	for term := uint64(1); term <= MaxEntries+200; term++ {
		d.Begin(term, "a", at(int(term)), StartAcquired)
	}
	if n := len(d.Entries); n != MaxEntries {
		t.Fatalf("%d entries, want %d", n, MaxEntries)
	}
	if first, last := d.Entries[0].Term, d.Entries[len(d.Entries)-1].Term; first != 201 || last != MaxEntries+200 {
		t.Errorf("kept terms %d..%d, want the latest", first, last)
	}
	if got := d.Last(3); len(got) != 3 || got[2].Term != MaxEntries+200 {
		t.Errorf("Last(3) = %+v", got)
	}
	for i := range MaxPeriods + 10 {
		d.FailsafeStart(MaxEntries+200, "a", at(10_000+i))
	}
	e := d.find(MaxEntries + 200)
	if len(e.Failsafe) != MaxPeriods || !e.Failsafe[MaxPeriods-1].Start.Equal(at(10_000+MaxPeriods+9)) {
		t.Errorf("%d failsafe periods, want the latest %d", len(e.Failsafe), MaxPeriods)
	}
	d.End(MaxEntries+200, "a", at(20_000), strings.Repeat("é", 400))
	if end := d.find(MaxEntries + 200).End; len(end) > maxText+3 || !strings.HasSuffix(end, "é...") {
		t.Errorf("a long reason is kept as %d bytes: %q", len(end), end)
	}
	b, err := encode(&d)
	if err != nil || len(b) > MaxSize {
		t.Errorf("encoded: %d bytes, %v", len(b), err)
	}
}

func TestResetLeaseDropsTheOlderTerms(t *testing.T) {
	var d Document
	for term := uint64(1); term <= 5; term++ {
		d.Begin(term, "a", at(int(term)), StartAcquired)
	}
	// The lease blob was deleted: term 1 again, much later.
	d.Begin(1, "b", at(3600), StartAcquired)
	if got, want := summary(d), "1 b [acquired] -> [] by \n"; got != want {
		t.Errorf("after a reset: %s, want %s", got, want)
	}
	// A late start of a lower term (acquired earlier) is not a reset.
	d.Begin(3, "a", at(3601), StartAcquired)
	d.Begin(2, "b", at(3600), StartAcquired)
	if n := len(d.Entries); n != 3 {
		t.Errorf("%d entries after a late start: %s", n, summary(d))
	}
}

func TestEncodeDecode(t *testing.T) {
	var d Document
	d.Begin(1, "a", time.Date(2026, 3, 1, 13, 0, 0, 123456789, time.FixedZone("x", 3600)), StartAcquired)
	b, err := encode(&d)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(b)
	if err != nil || back.Version != Version || len(back.Entries) != 1 || !back.Entries[0].AcquiredAt.Equal(d.Entries[0].AcquiredAt) {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	var raw map[string]any
	json.Unmarshal(b, &raw)
	if raw["version"] != float64(1) || !strings.Contains(string(b), `"acquired_at":"2026-03-01T12:00:00.123456789Z"`) {
		t.Errorf("stored form: %s", b)
	}
	back.Begin(1, "a", d.Entries[0].AcquiredAt, StartAcquired) // the same acquisition after a round trip
	if len(back.Entries) != 1 {
		t.Errorf("a round trip made the same acquisition look like a reset: %s", summary(back))
	}
	if d, err := Decode(nil); err != nil || d.Version != Version || len(d.Entries) != 0 {
		t.Errorf("Decode(nil) = %+v, %v", d, err)
	}
	if _, err := Decode([]byte("{not json")); err == nil || !strings.Contains(err.Error(), "corrupt history") {
		t.Errorf("Decode of junk: %v", err)
	}
	newer := Document{Version: Version + 1}
	if _, err := encode(&newer); !errors.Is(err, ErrNewer) {
		t.Errorf("encode of a newer version: %v, want ErrNewer", err)
	}
}
