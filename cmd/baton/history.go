package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"

	"github.com/batonproxy/baton/cmd/baton/internal/node"
	"github.com/batonproxy/baton/lease"
	"github.com/batonproxy/baton/lease/history"
)

// cmdHistory prints the terms recorded beside the lease. It reads the
// storage the configuration names directly, with that configuration's
// credentials (as patronictl reads its DCS), not through the admin API:
// so it answers on a standby and while the node is down, the cases an
// operator asks "why did this node become active?" in.
func cmdHistory(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("history", stderr)
	path := fs.String("config", defaultConfigPath(), "the node's configuration file: the lease storage and its credentials")
	asJSON := fs.Bool("json", false, "print the entries as JSON")
	n := fs.Int("n", 20, "show the latest N terms (0: every term kept)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 || *n < 0 {
		fmt.Fprintln(stderr, "baton history: usage: baton history [-config FILE] [-json] [-n N]")
		return exitUsage
	}
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return exitUsage
	}
	store, err := node.HistoryStore(cfg, zap.NewNop())
	if err != nil {
		fmt.Fprintf(stderr, "baton history: %v\n", err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	doc, err := store.Read(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "baton history: %v\n", err)
		if errors.Is(err, lease.ErrConfig) {
			return exitUsage
		}
		return exitFailure
	}
	doc.Entries = doc.Last(*n)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(doc)
		return exitOK
	}
	if len(doc.Entries) == 0 {
		fmt.Fprintf(stdout, "no terms recorded yet (%s)\n", store)
		return exitOK
	}
	printHistory(stdout, doc.Entries, time.Local)
	return exitOK
}

// historyTime is how the table shows an instant: local time, to the
// millisecond (a handover takes milliseconds), with its offset.
const historyTime = "2006-01-02T15:04:05.000Z07:00"

// printHistory writes the entries as a table, oldest first.
func printHistory(w io.Writer, entries []history.Entry, loc *time.Location) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TERM\tNODE\tACQUIRED\tENDED\tDURATION\tHOW")
	for _, e := range entries {
		acquired, ended, took := "?", "-", "-"
		if !e.AcquiredAt.IsZero() {
			acquired = e.AcquiredAt.In(loc).Format(historyTime)
		}
		if !e.EndedAt.IsZero() {
			ended = e.EndedAt.In(loc).Format(historyTime)
			took = "?"
			if !e.AcquiredAt.IsZero() {
				took = fmtDuration(e.EndedAt.Sub(e.AcquiredAt))
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Term, e.Node, acquired, ended, took, how(e, loc))
	}
	tw.Flush()
}

// how is the HOW column: how the term started, how it ended, and its
// failsafe periods.
func how(e history.Entry, loc *time.Location) string {
	start := e.Start
	if start == "" {
		start = "start not recorded"
	}
	end := e.End
	switch {
	case end == "":
		end = "no end recorded (still held, or its end not written yet)"
	case e.EndedBy != "" && e.EndedBy != e.Node:
		end += " (recorded by " + e.EndedBy + ")"
	}
	parts := []string{start, end}
	switch n := len(e.Failsafe); {
	case n > 2:
		var total time.Duration
		for _, p := range e.Failsafe {
			if !p.End.IsZero() {
				total += p.End.Sub(p.Start)
			}
		}
		parts = append(parts, fmt.Sprintf("failsafe %d times (%s in all)", n, fmtDuration(total)))
	default:
		for _, p := range e.Failsafe {
			if p.End.IsZero() {
				parts = append(parts, "failsafe from "+p.Start.In(loc).Format(time.TimeOnly))
				continue
			}
			parts = append(parts, fmt.Sprintf("failsafe %s for %s", p.Start.In(loc).Format(time.TimeOnly), fmtDuration(p.End.Sub(p.Start))))
		}
	}
	return strings.Join(parts, "; ")
}

// fmtDuration renders a term's length to a precision that suits it:
// milliseconds for a handover, days for a long term.
func fmtDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "?"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	}
	days := d / (24 * time.Hour)
	return fmt.Sprintf("%dd%dh", days, (d-days*24*time.Hour)/time.Hour)
}
