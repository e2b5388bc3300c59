package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"
	"github.com/batonproxy/baton/internal/fsutil"
	sockaddr "github.com/hashicorp/go-sockaddr"
)

// Load reads, decodes, completes and validates the configuration file at
// path. A file larger than 256 KiB, or nested deeper than 32 levels, is
// refused before it is decoded. On failure the error is a *Error or an
// errors.Join of them (see Errors); the CLI maps any Load error to exit
// code 2.
func Load(path string) (*Config, error) {
	data, err := fsutil.ReadFileLimit(path, maxFileSize)
	if errors.Is(err, fsutil.ErrTooLarge) {
		return nil, &Error{File: path, Msg: fileTooLargeMsg}
	}
	if err != nil {
		return nil, &Error{File: path, Msg: "read config: " + err.Error()}
	}
	l := newLoader()
	l.stateBase = stateBaseFor(path)
	c, err := l.load(data, path)
	if err != nil {
		return nil, err
	}
	c.Path = path
	return c, nil
}

// LoadBytes is Load for a configuration held in memory; name is used in
// error messages only (Config.Path stays "").
func LoadBytes(data []byte, name string) (*Config, error) {
	if len(data) > maxFileSize {
		return nil, &Error{File: name, Msg: fileTooLargeMsg}
	}
	return newLoader().load(data, name)
}

// loader holds the environment lookups Load depends on, so tests can replace
// them.
type loader struct {
	hostname   func() (string, error)
	privateIP  func() (string, error)
	lookPath   func(string) (string, error)
	interfaces func() (sockaddr.IfAddrs, error)
	getenv     func(string) string // GOGC, GOMEMLIMIT
	readSecret func(env, file string) (string, error)
	// stateBase is the folder the state paths default to: on Windows the
	// configuration file's (stateBaseFor), "" for the OS's own.
	stateBase string
}

func newLoader() *loader {
	return &loader{
		hostname:   os.Hostname,
		privateIP:  sockaddr.GetPrivateIP,
		lookPath:   exec.LookPath,
		interfaces: sockaddr.GetAllInterfaces,
		getenv:     os.Getenv,
		readSecret: ReadSecret,
	}
}

// state is one Load call.
type state struct {
	*loader
	file   string
	loc    *locator
	raw    map[string]any // the document as plain TOML values: what was written
	errs   []*Error
	failed map[string]bool // keys that already have an error

	advertiseDerived bool              // drain.advertise_url came from listen.http
	checkNames       []string          // to name the check in its errors
	fromTemplate     map[string]string // key -> the template its value came from

	ifOnce sync.Once
	ifs    sockaddr.IfAddrs
	ifErr  error
}

func (l *loader) load(data []byte, name string) (*Config, error) {
	st := &state{loader: l, file: name, failed: map[string]bool{}, fromTemplate: map[string]string{}}
	if line := nestingLine(data, maxNesting); line > 0 {
		// Before the decoder, whose memory grows with the square of the depth.
		return nil, &Error{File: name, Line: line, Msg: tooDeepMsg}
	}
	c := st.decode(data)
	if c == nil {
		return nil, st.result()
	}
	st.defaults(c)
	for _, ch := range c.Health.Checks {
		st.checkNames = append(st.checkNames, ch.Name)
	}
	st.templates(c)
	st.derived(c)
	st.validate(c)
	if err := st.result(); err != nil {
		return nil, err
	}
	return c, nil
}

func (st *state) result() error {
	slices.SortStableFunc(st.errs, func(a, b *Error) int {
		// Errors with a line first, in file order; the others keep their
		// (logical) order at the end.
		switch {
		case a.Line == 0 && b.Line == 0:
			return 0
		case a.Line == 0:
			return 1
		case b.Line == 0:
			return -1
		}
		return cmp.Compare(a.Line, b.Line)
	})
	return joinErrors(st.errs)
}

// errorf records a problem with key (at most one per key).
func (st *state) errorf(key, format string, args ...any) {
	if st.failed[key] {
		return
	}
	st.failed[key] = true
	msg := fmt.Sprintf(format, args...)
	if rest, ok := strings.CutPrefix(key, "health.check["); ok {
		n, _, _ := strings.Cut(rest, "]")
		if i, err := strconv.Atoi(n); err == nil && i < len(st.checkNames) && st.checkNames[i] != "" {
			msg = fmt.Sprintf("check %q: %s", st.checkNames[i], msg)
		}
	}
	if src, ok := st.fromTemplate[key]; ok {
		msg += fmt.Sprintf(" (from template %q)", src)
	}
	st.errs = append(st.errs, &Error{File: st.file, Line: st.loc.line(key), Key: key, Msg: msg})
}

// rawDoc decodes like Config, except that health checks stay undecoded
// until each can be decoded knowing its index (the decoder's own key
// context has no array indexes).
type rawDoc struct {
	Config
	Health rawHealth `toml:"health"`
}

type rawHealth struct {
	Health
	Checks []toml.Primitive `toml:"check"`
}

func (st *state) decode(data []byte) *Config {
	var doc rawDoc
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&doc)
	if err != nil {
		st.decodeError(err, -1, data)
		return nil
	}
	st.loc = locate(data)
	c := doc.Config
	c.Health = doc.Health.Health
	c.Health.Checks = nil
	for i, p := range doc.Health.Checks {
		var ch Check
		if err := md.PrimitiveDecode(p, &ch); err != nil {
			st.decodeError(err, i, data)
			return nil
		}
		c.Health.Checks = append(c.Health.Checks, ch)
	}
	if st.unknownKeys(md.Keys(), md.Undecoded()) {
		return nil
	}
	if _, err := toml.Decode(string(data), &st.raw); err != nil {
		// Cannot happen: the same document decoded above.
		st.decodeError(err, -1, data)
		return nil
	}
	return &c
}

var tomlErrRE = regexp.MustCompile(`(?s)^toml: (?:line (\d+) )?\(last key ("(?:[^"\\]|\\.)*")\): (.*)$`)

// decodeError turns a decoder error into an *Error. check is the index of
// the health check being decoded, or -1.
func (st *state) decodeError(err error, check int, data []byte) {
	e := &Error{File: st.file}
	var pe toml.ParseError
	if errors.As(err, &pe) {
		e.Line, e.Key, e.Msg = pe.Position.Line, pe.LastKey, pe.Message
	} else if m := tomlErrRE.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Key, _ = strconv.Unquote(m[2])
		e.Msg = m[3]
	} else {
		e.Msg = strings.TrimPrefix(err.Error(), "toml: ")
	}
	e.Msg = friendlyTypeError(e.Msg)
	if check >= 0 {
		if rest, ok := strings.CutPrefix(e.Key, "health.check"); ok && (rest == "" || rest[0] == '.') {
			e.Key = "health.check[" + strconv.Itoa(check) + "]" + rest
			if l := locate(data).line(e.Key); l > 0 {
				e.Line = l
			}
		}
	}
	if e.Key == "" && e.Line == 0 {
		// Only the decoder's own misuse errors have neither; keep the
		// promise that every error points somewhere.
		e.Line = 1
	}
	st.errs = append(st.errs, e)
}

var (
	typeErrRE  = regexp.MustCompile(`^incompatible types: TOML value has type (.+); destination has type (.+)$`)
	tableErrRE = regexp.MustCompile(`^type mismatch for \S+: expected table but found (.+)$`)
)

func friendlyTypeError(msg string) string {
	m := typeErrRE.FindStringSubmatch(msg)
	if m == nil {
		if t := tableErrRE.FindStringSubmatch(msg); t != nil {
			m = []string{msg, t[1], "map"}
		} else {
			return msg
		}
	}
	got := m[1]
	switch {
	case got == "int64":
		got = "an integer"
	case got == "float64":
		got = "a float"
	case got == "string":
		got = "a string"
	case got == "bool":
		got = "a boolean"
	case got == "time.Time":
		got = "a date-time"
	case strings.HasPrefix(got, "map"):
		got = "a table"
	case strings.HasPrefix(got, "[]"):
		got = "an array"
	}
	want := m[2]
	switch want {
	case "integer":
		want = "an integer"
	case "string", "boolean":
		want = "a " + want
	case "slice":
		want = "an array"
	case "map":
		want = "a table"
	case "float":
		want = "a number"
	case "primitive (string-like)":
		want = "a string"
	}
	return "wrong type: the value is " + got + ", want " + want
}

// unknownKeys reports every key the schema does not have, in document
// order; it returns true if there was any. The decoder matches field names
// case-insensitively, so a key that differs from the schema only in case
// ("Duration") is decoded but reported here too: keys are case-sensitive.
func (st *state) unknownKeys(all, undecoded []toml.Key) bool {
	bad := make(map[string]bool, len(undecoded))
	for _, k := range undecoded {
		bad[k.String()] = true
	}
	for _, k := range all {
		if !inSchema(k) {
			bad[k.String()] = true
		}
	}
	if len(bad) == 0 {
		return false
	}
	seen := map[string]int{}
	for _, k := range all {
		s := k.String()
		n := seen[s]
		seen[s]++
		if !bad[s] {
			continue
		}
		if len(k) > 1 && bad[k[:len(k)-1].String()] {
			continue // the enclosing table is reported already
		}
		e := &Error{File: st.file, Key: s, Msg: "unknown key"}
		if le, ok := st.loc.nth(k, n); ok {
			e.Key, e.Line = le.key, le.line
		}
		if s := suggest(k); s != "" {
			e.Msg += fmt.Sprintf(" (did you mean %s?)", s)
		}
		st.errs = append(st.errs, e)
	}
	return true
}

// inSchema reports whether k names a key of Config exactly (keys below a
// map, like a check's headers, are free).
func inSchema(k toml.Key) bool {
	t := reflect.TypeFor[Config]()
	for _, part := range k {
		for t.Kind() == reflect.Slice || t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() == reflect.Map {
			return true
		}
		if t.Kind() != reflect.Struct || t == reflect.TypeFor[StatusRange]() || t == reflect.TypeFor[Duration]() {
			return false
		}
		found := false
		for f := range t.Fields() {
			if name, _, _ := strings.Cut(f.Tag.Get("toml"), ","); name == part {
				t, found = f.Type, true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// schemaKeys maps each table of the schema ("" for the top level,
// "health.check" for every check) to its key names.
var schemaKeys = sync.OnceValue(func() map[string][]string {
	out := map[string][]string{}
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for f := range t.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if name == "" || name == "-" {
				continue
			}
			out[prefix] = append(out[prefix], name)
			ft := f.Type
			if ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[StatusRange]() {
				walk(joinKey(prefix, name), ft)
			}
		}
	}
	walk("", reflect.TypeFor[Config]())
	return out
})

// suggest proposes the known key closest to an unknown one: a sibling with
// a small edit distance, or the only key anywhere with the same name.
func suggest(k toml.Key) string {
	keys := schemaKeys()
	parent, name := strings.Join(k[:len(k)-1], "."), k[len(k)-1]
	best, bestD := "", 3
	for _, s := range keys[parent] {
		if d := editDistance(strings.ToLower(name), s); d < bestD {
			best, bestD = joinKey(parent, s), d
		}
	}
	if best != "" {
		return best
	}
	var found []string
	for p, names := range keys {
		if slices.Contains(names, name) && p != parent {
			found = append(found, joinKey(p, name))
		}
	}
	if len(found) == 1 {
		return found[0]
	}
	return ""
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// has reports whether the document writes the key (path of plain parts).
func (st *state) has(path ...string) bool {
	var cur any = st.raw
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[p]; !ok {
			return false
		}
	}
	return true
}

// checkHas reports whether health check i writes key.
func (st *state) checkHas(i int, key string) bool { return st.elemHas(i, key, "health", "check") }
