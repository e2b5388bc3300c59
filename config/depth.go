package config

import (
	"strconv"

	"github.com/batonproxy/baton/internal/fsutil"
)

// Bounds on a configuration file, checked before the TOML decoder sees it
// (a configuration file is also read by a running node, on reload). The
// decoder's time and memory grow with the square of a key's depth: an
// 80 KB file of nested arrays took 2.4 GB, a 16 KB dotted key 2.5 GB. Within
// the depth bound they grow with the file's size, up to some 500 bytes of
// heap per byte of input (a 1 MiB file of small nested inline tables peaked
// at 550 MB), hence a size bound well below that: baton.example.toml, every
// key commented, is 11 KiB and nests five levels ([[health.check]],
// headers = { "X-A" = "b" }).
const (
	maxFileSize = 256 << 10 // bytes
	maxNesting  = 32        // levels; see nestingLine
)

var (
	fileTooLargeMsg = "config file is larger than " + fsutil.FormatSize(maxFileSize)
	tooDeepMsg      = "nesting deeper than " + strconv.Itoa(maxNesting) + " levels (table and dotted-key parts, arrays, inline tables)"
)

// nestingLine returns the 1-based line on which data nests deeper than
// limit levels, or 0 if it does not. Every part of a table header or of a
// dotted key is a level, and so is every array and inline table, added up
// along the path to the deepest value: `a.b = [[1]]` under `[t]` reaches
// level 5 (t, a, b, two arrays); an array of tables' header counts one more
// for its index.
//
// It is a linear scan without allocation (beyond a stack of at most limit
// entries) that knows just enough TOML to tell keys from values and to
// skip strings (basic with escapes, literal, and both multi-line forms)
// and comments, so brackets and dots written in them do not count. It runs
// before the decoder, on any input: it never panics, and on input that is
// not TOML it errs on the side of counting (brackets after a complete
// value count as nesting), so the decoder never goes deeper than it saw.
func nestingLine(data []byte, limit int) int {
	type frame struct {
		kind  byte // '[' or '{'
		level int  // of the array or inline table itself
	}
	const (
		inKey   = iota // reading a key (or a header, first on a top-level line)
		inValue        // expecting a value
		after          // after a complete value, or inside a scalar
	)
	var (
		stack   = make([]frame, 0, 8)
		line    = 1
		mode    = inKey
		hdr     = 0     // level of the current top-level table (its header's parts)
		base    = 0     // level of the table the key being read is written in
		parts   = 0     // parts of the key being read, so far
		started = false // the key being read has begun
		cur     = 0     // level of what a '[' or '{' here would be nested in
	)
	n := len(data)
	for i := 0; i < n; i++ {
		c := data[i]
		switch c {
		case '\n':
			line++
			if len(stack) == 0 {
				mode, base, parts, started = inKey, hdr, 0, false
			}
			continue
		case ' ', '\t', '\r':
			continue
		case '#':
			for i+1 < n && data[i+1] != '\n' {
				i++
			}
			continue
		}
		if mode == inKey {
			switch c {
			case '=':
				mode, cur = inValue, base+max(parts, 1)
				continue
			case '.':
				parts++
				if base+parts > limit {
					return line
				}
				continue
			case '[', '{':
				if c == '[' && len(stack) == 0 && !started {
					i, hdr = scanHeader(data, i)
					if hdr > limit {
						return line
					}
					mode, cur = after, hdr
					continue
				}
				cur = base + max(parts, 1) // not TOML: count it as a value's bracket
			default:
				if !started {
					started, parts = true, max(parts, 1)
					if base+parts > limit {
						return line
					}
				}
			}
		}
		switch c {
		case '"', '\'':
			if i+2 < n && data[i+1] == c && data[i+2] == c {
				i, line = skipMultiline(data, i+3, c, line)
			} else {
				i = skipString(data, i+1, c)
			}
			if mode == inValue {
				mode = after
			}
		case '[', '{':
			level := cur + 1
			if level > limit {
				return line
			}
			stack = append(stack, frame{kind: c, level: level})
			if c == '{' {
				mode, base, parts, started = inKey, level, 0, false
			} else {
				mode, cur = inValue, level
			}
		case ']', '}':
			if len(stack) > 0 {
				// What follows is nested in what this closed, as far as
				// counting goes (only ',', a closing bracket or a newline
				// may follow in TOML, and each sets its own level).
				cur = stack[len(stack)-1].level
				stack = stack[:len(stack)-1]
			}
			mode = after
		case ',':
			if len(stack) > 0 {
				top := stack[len(stack)-1]
				if top.kind == '{' {
					mode, base, parts, started = inKey, top.level, 0, false
				} else {
					mode, cur = inValue, top.level
				}
			}
		default:
			if mode == inValue {
				mode = after // a number, boolean or date-time
			}
		}
	}
	return 0
}

// scanHeader reads the table header "[a.b]" or "[[a.b]]" starting at
// data[i] == '[' and returns the index of its last byte and its level (its
// parts, plus one for an array of tables' index). It stops early, before a
// newline, a comment or a bracket the header cannot hold, leaving them to
// the caller.
func scanHeader(data []byte, i int) (int, int) {
	level, array := 1, i+1 < len(data) && data[i+1] == '['
	if array {
		level++
		i++
	}
	for i++; i < len(data); i++ {
		switch c := data[i]; c {
		case ']':
			if array && i+1 < len(data) && data[i+1] == ']' {
				i++
			}
			return i, level
		case '.':
			level++
		case '"', '\'':
			i = skipString(data, i+1, c)
		case '\n', '#', '[', '{', '}':
			return i - 1, level
		}
	}
	return i, level
}

// skipString returns the index of the quote that closes a one-line string
// whose content starts at i (backslash escapes only in basic strings), or,
// for an unterminated one, the index before the newline that ends it (left
// for the caller to count) or len(data).
func skipString(data []byte, i int, quote byte) int {
	for ; i < len(data); i++ {
		switch data[i] {
		case quote:
			return i
		case '\n':
			return i - 1
		case '\\':
			if quote == '"' && i+1 < len(data) && data[i+1] != '\n' {
				i++
			}
		}
	}
	return len(data)
}

// skipMultiline returns the index of the last quote that closes a
// multi-line string whose content starts at i (or len(data)), and the line
// number there. Up to two quotes before the closing three belong to the
// content (`""""` ends with a quote), so a run of up to five is consumed.
func skipMultiline(data []byte, i int, quote byte, line int) (int, int) {
	for ; i < len(data); i++ {
		switch data[i] {
		case '\n':
			line++
		case '\\':
			if quote == '"' && i+1 < len(data) {
				i++
				if data[i] == '\n' {
					line++
				}
			}
		case quote:
			if i+2 < len(data) && data[i+1] == quote && data[i+2] == quote {
				j := i + 3
				for j < len(data) && j < i+5 && data[j] == quote {
					j++
				}
				return j - 1, line
			}
		}
	}
	return len(data), line
}
