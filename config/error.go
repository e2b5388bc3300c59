package config

import (
	"errors"
	"strconv"
	"strings"
)

// Error is one problem found while loading a configuration. Load returns a
// single *Error or several joined with errors.Join; use Errors to list them.
type Error struct {
	// File is the name the configuration was loaded under ("" if none).
	File string
	// Line is the 1-based line of the offending key in File; 0 when unknown
	// (for example when the value came from a default).
	Line int
	// Key is the dotted key, with the index of array elements:
	// "lease.renew_deadline", "health.check[1].rise". Empty only for errors
	// that concern the whole file (unreadable file, syntax error without key).
	Key string
	// Msg says what is wrong. It never contains a secret value.
	Msg string
}

// Error formats the problem as "baton.toml:12: lease.renew_deadline: msg".
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		b.WriteString(e.File + ":" + strconv.Itoa(e.Line) + ": ")
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors returns every *Error inside err (a single *Error or an errors.Join
// of them, possibly nested). It returns nil for a nil err.
func Errors(err error) []*Error {
	if err == nil {
		return nil
	}
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		if ce, ok := err.(*Error); ok {
			out = append(out, ce)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var ce *Error
		if errors.As(err, &ce) {
			out = append(out, ce)
		}
	}
	walk(err)
	return out
}

// joinErrors returns nil, the single error, or an errors.Join of all of them.
func joinErrors(errs []*Error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	list := make([]error, len(errs))
	for i, e := range errs {
		list[i] = e
	}
	return errors.Join(list...)
}
