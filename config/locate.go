package config

import (
	"slices"
	"strconv"
	"strings"
)

// locator maps keys of a TOML document to the lines they are written on.
//
// BurntSushi/toml does not export key positions, so this is a small scanner
// that understands just enough TOML to follow tables, arrays of tables,
// dotted keys, strings and inline values. It runs only on documents the real
// parser has accepted, and it is best effort: a key it cannot place gets
// line 0. It never panics and always terminates (each step consumes input).
type locator struct {
	entries []locEntry

	// Indexes built on first use, so that a file with many keys (all of
	// them unknown, say) costs linear time, not quadratic.
	byKey   map[string]int   // display key -> first entry
	byPlain map[string][]int // plain parts joined by NUL -> entries in order
}

type locEntry struct {
	key   string   // display key with array indexes: "health.check[1].rise"
	plain []string // key parts as toml.Key has them (no indexes); nil for array elements
	line  int
}

// line returns the line of key, or of its nearest ancestor written in the
// file (for example the [lease] header for a defaulted lease.duration), or 0.
func (l *locator) line(key string) int {
	if l == nil {
		return 0
	}
	if l.byKey == nil {
		l.byKey = make(map[string]int, len(l.entries))
		for i, e := range l.entries {
			if _, ok := l.byKey[e.key]; !ok {
				l.byKey[e.key] = i
			}
		}
	}
	for key != "" {
		// An array of tables is written where its first element is.
		i, ok := l.byKey[key]
		if j, ok0 := l.byKey[key+"[0]"]; ok0 && (!ok || j < i) {
			i, ok = j, true
		}
		if ok {
			return l.entries[i].line
		}
		key = parentKey(key)
	}
	return 0
}

// nth returns the n-th (0-based) entry whose parts equal plain, in document
// order.
func (l *locator) nth(plain []string, n int) (locEntry, bool) {
	if l == nil {
		return locEntry{}, false
	}
	if l.byPlain == nil {
		l.byPlain = map[string][]int{}
		for i, e := range l.entries {
			if e.plain != nil {
				k := plainKey(e.plain)
				l.byPlain[k] = append(l.byPlain[k], i)
			}
		}
	}
	if idx := l.byPlain[plainKey(plain)]; n >= 0 && n < len(idx) {
		return l.entries[idx[n]], true
	}
	return locEntry{}, false
}

// plainKey encodes key parts as a map key (length-prefixed: a part may
// contain any character).
func plainKey(parts []string) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(strconv.Itoa(len(p)))
		b.WriteByte(':')
		b.WriteString(p)
	}
	return b.String()
}

// parentKey strips the last ".part" or "[n]" from a display key.
func parentKey(key string) string {
	if strings.HasSuffix(key, "]") {
		if i := strings.LastIndexByte(key, '['); i > 0 {
			return key[:i]
		}
		return ""
	}
	i := strings.LastIndexByte(key, '.')
	if i < 0 {
		return ""
	}
	return key[:i]
}

// quotePart renders one key part for display keys.
func quotePart(p string) string {
	if p == "" {
		return `""`
	}
	for _, r := range p {
		if !isBare(byte(r)) || r > 0x7f {
			return strconv.Quote(p)
		}
	}
	return p
}

func isBare(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

func joinKey(prefix, part string) string {
	if prefix == "" {
		return part
	}
	return prefix + "." + part
}

type scanner struct {
	s      string
	i      int
	line   int
	loc    *locator
	arrays map[string]int // display key of an array of tables -> elements seen
}

func locate(data []byte) *locator {
	sc := &scanner{s: string(data), line: 1, loc: &locator{}, arrays: map[string]int{}}
	sc.document()
	return sc.loc
}

func (sc *scanner) eof() bool { return sc.i >= len(sc.s) }

func (sc *scanner) peek(off int) byte {
	if sc.i+off < len(sc.s) {
		return sc.s[sc.i+off]
	}
	return 0
}

func (sc *scanner) advance() {
	if sc.i < len(sc.s) {
		if sc.s[sc.i] == '\n' {
			sc.line++
		}
		sc.i++
	}
}

func (sc *scanner) skipWS() {
	for !sc.eof() && (sc.s[sc.i] == ' ' || sc.s[sc.i] == '\t') {
		sc.i++
	}
}

// skipWSNL skips blanks, newlines and comments.
func (sc *scanner) skipWSNL() {
	for !sc.eof() {
		switch sc.s[sc.i] {
		case ' ', '\t', '\r', '\n':
			sc.advance()
		case '#':
			sc.skipLine()
		default:
			return
		}
	}
}

// skipLine moves to the next newline (not consuming it).
func (sc *scanner) skipLine() {
	for !sc.eof() && sc.s[sc.i] != '\n' {
		sc.i++
	}
}

func (sc *scanner) document() {
	prefix, plain := "", []string(nil)
	for {
		sc.skipWSNL()
		if sc.eof() {
			return
		}
		start := sc.i
		if sc.s[sc.i] == '[' {
			prefix, plain = sc.header()
		} else {
			sc.keyval(prefix, plain)
		}
		sc.skipLine()
		if sc.i == start {
			sc.advance()
		}
	}
}

// header reads "[a.b]" or "[[a.b]]" and returns the new table prefix.
func (sc *scanner) header() (string, []string) {
	line := sc.line
	isArray := sc.peek(1) == '['
	if isArray {
		sc.i += 2
	} else {
		sc.i++
	}
	parts := sc.key()
	key := ""
	for j, p := range parts {
		key = joinKey(key, quotePart(p))
		last := j == len(parts)-1
		switch {
		case last && isArray:
			n := sc.arrays[key]
			sc.arrays[key] = n + 1
			key += "[" + strconv.Itoa(n) + "]"
		case sc.arrays[key] > 0:
			key += "[" + strconv.Itoa(sc.arrays[key]-1) + "]"
		}
	}
	if len(parts) > 0 {
		sc.loc.entries = append(sc.loc.entries, locEntry{key: key, plain: parts, line: line})
	}
	return key, parts
}

// key reads a possibly dotted key; it returns nil if there is none.
func (sc *scanner) key() []string {
	var parts []string
	for {
		sc.skipWS()
		var part string
		switch c := sc.peek(0); {
		case c == '"':
			part = sc.basicString()
		case c == '\'':
			part = sc.literalString()
		case isBare(c):
			start := sc.i
			for !sc.eof() && isBare(sc.s[sc.i]) {
				sc.i++
			}
			part = sc.s[start:sc.i]
		default:
			return parts
		}
		parts = append(parts, part)
		sc.skipWS()
		if sc.peek(0) != '.' {
			return parts
		}
		sc.i++
	}
}

// keyval reads "key = value" under prefix, recording the key and, for
// inline tables and arrays of them, the keys inside.
func (sc *scanner) keyval(prefix string, plainPrefix []string) {
	line := sc.line
	parts := sc.key()
	if len(parts) == 0 {
		return
	}
	sc.skipWS()
	if sc.peek(0) != '=' {
		return
	}
	sc.i++
	sc.skipWS()
	key := prefix
	for _, p := range parts {
		key = joinKey(key, quotePart(p))
	}
	plain := append(slices.Clip(plainPrefix), parts...)
	sc.loc.entries = append(sc.loc.entries, locEntry{key: key, plain: plain, line: line})
	sc.value(key, plain)
}

func (sc *scanner) value(key string, plain []string) {
	switch c := sc.peek(0); c {
	case '"':
		if sc.peek(1) == '"' && sc.peek(2) == '"' {
			sc.multiline('"')
		} else {
			sc.basicString()
		}
	case '\'':
		if sc.peek(1) == '\'' && sc.peek(2) == '\'' {
			sc.multiline('\'')
		} else {
			sc.literalString()
		}
	case '[':
		n := 0
		sc.list(']', func() {
			elem := key + "[" + strconv.Itoa(n) + "]"
			if sc.s[sc.i] == '{' {
				sc.loc.entries = append(sc.loc.entries, locEntry{key: elem, line: sc.line})
			}
			sc.value(elem, plain)
			n++
		})
	case '{':
		sc.list('}', func() { sc.keyval(key, plain) })
	default:
		sc.scalar()
	}
}

// list scans an array or inline table from its opening bracket to its
// closing one (or the end of the input), calling elem at each element.
// An element elem does not move past is skipped one byte at a time, so bad
// input cannot stall the scan.
func (sc *scanner) list(closing byte, elem func()) {
	sc.advance()
	for {
		sc.skipWSNL()
		if sc.eof() {
			return
		}
		switch sc.s[sc.i] {
		case closing:
			sc.advance()
			return
		case ',':
			sc.advance()
			continue
		}
		start := sc.i
		elem()
		if sc.i == start {
			sc.advance()
		}
	}
}

// scalar skips a number, boolean or date-time.
func (sc *scanner) scalar() {
	start := sc.i
	for !sc.eof() && !strings.ContainsRune(" \t\r\n,]}#", rune(sc.s[sc.i])) {
		sc.i++
	}
	// "1979-05-27 07:32:00Z": a date, a space, then the time.
	if sc.i-start == 10 && sc.s[start+4] == '-' && sc.peek(0) == ' ' && sc.peek(1) >= '0' && sc.peek(1) <= '9' {
		sc.i++
		for !sc.eof() && !strings.ContainsRune(" \t\r\n,]}#", rune(sc.s[sc.i])) {
			sc.i++
		}
	}
}

// basicString reads a one-line "..." string and returns its value.
func (sc *scanner) basicString() string {
	sc.i++ // opening quote
	start := sc.i
	for !sc.eof() && sc.s[sc.i] != '"' && sc.s[sc.i] != '\n' {
		if sc.s[sc.i] == '\\' && sc.i+1 < len(sc.s) && sc.s[sc.i+1] != '\n' {
			sc.i++
		}
		sc.i++
	}
	raw := sc.s[start:sc.i]
	if sc.peek(0) == '"' {
		sc.i++
	}
	if v, err := strconv.Unquote(`"` + raw + `"`); err == nil {
		return v
	}
	return raw
}

// literalString reads a one-line '...' string and returns its value.
func (sc *scanner) literalString() string {
	sc.i++
	start := sc.i
	for !sc.eof() && sc.s[sc.i] != '\'' && sc.s[sc.i] != '\n' {
		sc.i++
	}
	v := sc.s[start:sc.i]
	if sc.peek(0) == '\'' {
		sc.i++
	}
	return v
}

// multiline skips a multi-line string, opened and closed by three quotes q
// (up to two extra closing quotes belong to the content).
func (sc *scanner) multiline(q byte) {
	sc.i += 3
	for !sc.eof() {
		if q == '"' && sc.s[sc.i] == '\\' {
			sc.advance()
			sc.advance()
			continue
		}
		if sc.s[sc.i] == q && sc.peek(1) == q && sc.peek(2) == q {
			sc.i += 3
			for extra := 0; extra < 2 && sc.peek(0) == q; extra++ {
				sc.i++
			}
			return
		}
		sc.advance()
	}
}
