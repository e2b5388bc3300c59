package e2e

import (
	"strings"
	"testing"
	"time"
)

func TestAnalyze(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ok := func(start, end int, inst string, term uint64) Request {
		return Request{Start: at(start), End: at(end), Code: 200, Instance: inst, Term: term}
	}
	fail := func(start, end int) Request {
		return Request{Start: at(start), End: at(end), Err: "EOF"}
	}
	tests := []struct {
		name string
		rs   []Request
		w    Window
		want Summary
	}{
		{
			name: "clean switch",
			rs: []Request{
				ok(0, 10, "app-a", 1), ok(20, 30, "app-a", 1),
				fail(100, 101), fail(150, 151),
				ok(600, 610, "app-b", 2), ok(620, 630, "app-b", 2),
			},
			w: Window{Event: at(50), OldTerm: 1},
			want: Summary{Requests: 6, Failed: 2, Recovered: true, Recovery: 560 * time.Millisecond,
				NewInstance: "app-b", NewTerm: 2, MaxTerm: 2, Terms: 1, Outage: 580 * time.Millisecond},
		},
		{
			name: "in flight at the switch is not dual serving",
			rs: []Request{
				ok(0, 700, "app-a", 1), // started before the switch, finishes late
				ok(600, 610, "app-b", 2),
			},
			w: Window{Event: at(50), Switch: at(60), OldTerm: 1},
			want: Summary{Requests: 2, Recovered: true, Recovery: 560 * time.Millisecond,
				NewInstance: "app-b", NewTerm: 2, MaxTerm: 2, Terms: 1, Outage: 90 * time.Millisecond},
		},
		{
			name: "started after the switch on the old backend: dual and stale",
			rs: []Request{
				ok(100, 700, "app-a", 1),
				ok(600, 610, "app-b", 2), ok(650, 660, "app-b", 2),
			},
			w: Window{Event: at(50), OldTerm: 1},
			want: Summary{Requests: 3, Recovered: true, Recovery: 560 * time.Millisecond,
				NewInstance: "app-b", NewTerm: 2, MaxTerm: 2, Terms: 2, Outage: 50 * time.Millisecond,
				Dual: 2, Stale: 1},
		},
		{
			name: "touching intervals do not overlap",
			rs:   []Request{ok(100, 200, "app-a", 2), ok(200, 300, "app-b", 3)},
			w:    Window{Event: at(50), OldTerm: 1},
			want: Summary{Requests: 2, Recovered: true, Recovery: 150 * time.Millisecond,
				NewInstance: "app-a", NewTerm: 2, MaxTerm: 3, Terms: 2, Outage: 100 * time.Millisecond},
		},
		{
			name: "same backend overlapping is fine; repair measured",
			rs: []Request{
				fail(60, 61), ok(900, 950, "app-b", 2), ok(910, 940, "app-b", 2),
			},
			w: Window{Event: at(50), Repair: at(800), OldTerm: 1},
			want: Summary{Requests: 3, Failed: 1, Recovered: true, Recovery: 890 * time.Millisecond,
				AfterRepair: 140 * time.Millisecond, NewInstance: "app-b", NewTerm: 2, MaxTerm: 2, Terms: 1,
				Outage: 10 * time.Millisecond},
		},
		{
			name: "no recovery, 503 without instance is a failure",
			rs: []Request{
				ok(0, 10, "app-a", 1),
				{Start: at(100), End: at(200), Code: 503},
			},
			w:    Window{Event: at(50), OldTerm: 1},
			want: Summary{Requests: 2, Failed: 1, MaxTerm: 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Analyze(tc.rs, tc.w)
			if (got.FirstFailure != "") != (tc.want.Failed > 0) {
				t.Errorf("FirstFailure %q with %d failures", got.FirstFailure, got.Failed)
			}
			if (got.FirstDual != "") != (tc.want.Dual > 0) || (got.FirstStale != "") != (tc.want.Stale > 0) {
				t.Errorf("examples: dual %q stale %q", got.FirstDual, got.FirstStale)
			}
			got.FirstFailure, got.FirstDual, got.FirstStale = "", "", ""
			if got != tc.want {
				t.Errorf("Analyze =\n %+v\nwant\n %+v", got, tc.want)
			}
		})
	}
}

func TestDualServingCountsPairs(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	rs := []Request{
		{Start: at(0), End: at(100), Instance: "a"},
		{Start: at(10), End: at(90), Instance: "a"},
		{Start: at(50), End: at(60), Instance: "b"},  // overlaps both a's: 2
		{Start: at(95), End: at(120), Instance: "b"}, // overlaps the first a: 1
		{Start: at(200), End: at(300), Instance: "c"},
		{Start: at(300), End: at(310), Instance: "a"},
		{Start: at(20), End: at(400), Instance: "z"}, // overlaps everything from 20ms on
	}
	n, ex := dualServing(rs[:6], at(0))
	if n != 3 || !strings.Contains(ex, "overlaps") {
		t.Errorf("dualServing = %d %q, want 3 pairs", n, ex)
	}
	if n, ex := dualServing(rs[:6], at(15)); n != 0 {
		t.Errorf("from 15ms: %d pairs (%s), want 0: the overlapping a's started before", n, ex)
	}
	if n, _ := dualServing(rs, at(15)); n != 4 {
		t.Errorf("from 15ms with z: %d pairs, want 4", n)
	}
}

func TestRow(t *testing.T) {
	s := Summary{Requests: 10, Failed: 1, Recovered: true, Recovery: 1500 * time.Millisecond, NewTerm: 3, NewInstance: "app-b", Outage: time.Second}
	got := s.Row("3 kill -9", 2)
	want := "| 3 kill -9 | 10 | 1 | 1.50 s | - | 1.00 s | 0.00 s | 0 | 0 | 2 → 3 (app-b) |"
	if got != want {
		t.Errorf("Row = %q, want %q", got, want)
	}
	if cols := strings.Count(strings.SplitN(TableHeader, "\n", 2)[0], "|"); cols != strings.Count(got, "|") {
		t.Errorf("header has %d bars, row %d", cols, strings.Count(got, "|"))
	}
}
