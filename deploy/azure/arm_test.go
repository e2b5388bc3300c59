package azure

// A tiny evaluator for the Azure Resource Manager template expressions that
// azuredeploy.json uses, so the tests can render what Azure would: the
// VMs' customData (cloud-init with each node's baton.toml), the NSG rules,
// the load balancer's probe and the role assignment's scope.
//
// It implements only the functions listed in armFuncs, with ARM's
// semantics for the arguments the template gives them; an expression that
// uses anything else fails the tests, so the template cannot drift into
// unchecked territory. What Azure decides at deployment time is stubbed
// and named as such: reference() answers from armEnv.refs (the identity's
// client and principal IDs, the public address's DNS name), uniqueString(),
// guid() and newGuid() are deterministic stand-ins of the right shape.

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// armEnv is what expressions are evaluated against.
type armEnv struct {
	tmpl   map[string]any            // the whole template
	params map[string]any            // parameter values, defaults applied
	refs   map[string]map[string]any // reference() answers by lower-cased resource ID
	copyIx int                       // copyIndex(), -1 outside a copy loop
	vars   map[string]any            // evaluated variables
	busy   map[string]bool           // variables being evaluated (cycles)
	used   map[string]bool           // functions called
}

const (
	testSubscription = "00000000-0000-0000-0000-00000000beef"
	testGroup        = "baton-rg"
	testLocation     = "westeurope"
)

// newArmEnv applies the template's parameter defaults to the given values
// (a default may use other parameters) and checks every value against its
// declaration.
func newArmEnv(tmpl map[string]any, given map[string]any, refs map[string]map[string]any) (*armEnv, error) {
	e := &armEnv{tmpl: tmpl, params: map[string]any{}, refs: refs, copyIx: -1,
		vars: map[string]any{}, busy: map[string]bool{}, used: map[string]bool{}}
	decl := obj(tmpl["parameters"])
	for k, v := range given {
		if _, ok := decl[k]; !ok {
			return nil, fmt.Errorf("parameter %q is not declared by the template", k)
		}
		e.params[k] = v
	}
	for _, k := range slices.Sorted(maps.Keys(decl)) {
		v, err := e.param(k)
		if err != nil {
			return nil, err
		}
		p := obj(decl[k])
		if allowed, ok := p["allowedValues"].([]any); ok && !slices.ContainsFunc(allowed, func(a any) bool { return equal(a, v) }) {
			return nil, fmt.Errorf("parameter %q: %v is not one of %v", k, v, allowed)
		}
		if s, ok := v.(string); ok {
			if n, ok := p["minLength"]; ok && len(s) < toInt(n) {
				return nil, fmt.Errorf("parameter %q: %q is shorter than %v", k, s, n)
			}
			if n, ok := p["maxLength"]; ok && len(s) > toInt(n) {
				return nil, fmt.Errorf("parameter %q: %q is longer than %v", k, s, n)
			}
		}
	}
	return e, nil
}

// param returns a parameter's value, evaluating its default when no value
// was given.
func (e *armEnv) param(name string) (any, error) {
	if v, ok := e.params[name]; ok {
		return v, nil
	}
	p, ok := obj(e.tmpl["parameters"])[name]
	if !ok {
		return nil, fmt.Errorf("no parameter %q", name)
	}
	d, ok := obj(p)["defaultValue"]
	if !ok {
		return nil, fmt.Errorf("parameter %q has no default and no value", name)
	}
	key := "parameter " + name
	if e.busy[key] {
		return nil, fmt.Errorf("parameter %q: its default refers to itself", name)
	}
	e.busy[key] = true
	defer delete(e.busy, key)
	v, err := e.eval(d)
	if err != nil {
		return nil, fmt.Errorf("default of parameter %q: %w", name, err)
	}
	e.params[name] = v
	return v, nil
}

// withCopy returns an environment in which copyIndex() is i.
func (e *armEnv) withCopy(i int) *armEnv {
	c := *e
	c.copyIx = i
	return &c
}

// eval evaluates a template value: expressions in strings (also in object
// keys), recursively through objects and arrays.
func (e *armEnv) eval(v any) (any, error) {
	switch v := v.(type) {
	case string:
		if src, ok := isExpr(v); ok {
			return e.evalExpr(src)
		}
		if strings.HasPrefix(v, "[[") {
			return v[1:], nil
		}
		return v, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			kv, err := e.eval(k)
			if err != nil {
				return nil, fmt.Errorf("key %s: %w", k, err)
			}
			ks, ok := kv.(string)
			if !ok {
				return nil, fmt.Errorf("key %s: not a string", k)
			}
			if out[ks], err = e.eval(x); err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			var err error
			if out[i], err = e.eval(x); err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
		}
		return out, nil
	}
	return v, nil
}

// isExpr reports whether a JSON string is an expression and returns its
// text without the brackets.
func isExpr(s string) (string, bool) {
	if len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']' && !strings.HasPrefix(s, "[[") {
		return s[1 : len(s)-1], true
	}
	return "", false
}

func (e *armEnv) evalExpr(src string) (any, error) {
	n, err := parseExpr(src)
	if err != nil {
		return nil, err
	}
	return e.evalNode(n)
}

// The syntax tree of an expression.
type (
	armNode interface{}
	armCall struct {
		name string
		args []armNode
	}
	armLit  struct{ v any }
	armProp struct {
		base armNode
		name string
	}
	armIndex struct{ base, index armNode }
)

type armParser struct {
	s   string
	pos int
}

func parseExpr(s string) (armNode, error) {
	p := &armParser{s: s}
	n, err := p.expr()
	if err != nil {
		return nil, fmt.Errorf("expression [%s]: %w", s, err)
	}
	p.space()
	if p.pos != len(p.s) {
		return nil, fmt.Errorf("expression [%s]: unexpected %q at %d", s, p.s[p.pos:], p.pos)
	}
	return n, nil
}

func (p *armParser) space() {
	for p.pos < len(p.s) && strings.ContainsRune(" \t\r\n", rune(p.s[p.pos])) {
		p.pos++
	}
}

func (p *armParser) peek() byte {
	p.space()
	if p.pos < len(p.s) {
		return p.s[p.pos]
	}
	return 0
}

func (p *armParser) expect(c byte) error {
	if p.peek() != c {
		return fmt.Errorf("want %q at %d", c, p.pos)
	}
	p.pos++
	return nil
}

func (p *armParser) expr() (armNode, error) {
	var n armNode
	switch c := p.peek(); {
	case c == '\'':
		p.pos++
		var b strings.Builder
		for {
			if p.pos >= len(p.s) {
				return nil, fmt.Errorf("unterminated string")
			}
			ch := p.s[p.pos]
			p.pos++
			if ch == '\'' {
				if p.pos < len(p.s) && p.s[p.pos] == '\'' { // '' is a quote
					b.WriteByte('\'')
					p.pos++
					continue
				}
				break
			}
			b.WriteByte(ch)
		}
		n = armLit{b.String()}
	case c == '-' || c >= '0' && c <= '9':
		start := p.pos
		p.pos++
		for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
			p.pos++
		}
		v, err := strconv.Atoi(p.s[start:p.pos])
		if err != nil {
			return nil, err
		}
		n = armLit{v}
	case isIdent(c):
		name := p.ident()
		if err := p.expect('('); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		call := armCall{name: name}
		if p.peek() == ')' {
			p.pos++
		} else {
			for {
				a, err := p.expr()
				if err != nil {
					return nil, err
				}
				call.args = append(call.args, a)
				if p.peek() == ',' {
					p.pos++
					continue
				}
				if err := p.expect(')'); err != nil {
					return nil, fmt.Errorf("%s: %w", name, err)
				}
				break
			}
		}
		n = call
	default:
		return nil, fmt.Errorf("unexpected %q at %d", c, p.pos)
	}
	for { // accessors
		switch p.peek() {
		case '.':
			p.pos++
			if !isIdent(p.peek()) {
				return nil, fmt.Errorf("property name expected at %d", p.pos)
			}
			n = armProp{n, p.ident()}
		case '[':
			p.pos++
			ix, err := p.expr()
			if err != nil {
				return nil, err
			}
			if err := p.expect(']'); err != nil {
				return nil, err
			}
			n = armIndex{n, ix}
		default:
			return n, nil
		}
	}
}

func isIdent(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func (p *armParser) ident() string {
	start := p.pos
	for p.pos < len(p.s) && (isIdent(p.s[p.pos]) || p.s[p.pos] >= '0' && p.s[p.pos] <= '9') {
		p.pos++
	}
	return p.s[start:p.pos]
}

func (e *armEnv) evalNode(n armNode) (any, error) {
	switch n := n.(type) {
	case armLit:
		return n.v, nil
	case armProp:
		b, err := e.evalNode(n.base)
		if err != nil {
			return nil, err
		}
		m, ok := b.(map[string]any)
		if !ok {
			return nil, fmt.Errorf(".%s of a %T", n.name, b)
		}
		for k, v := range m { // ARM property names are case-insensitive
			if strings.EqualFold(k, n.name) {
				return v, nil
			}
		}
		return nil, fmt.Errorf("no property %q", n.name)
	case armIndex:
		b, err := e.evalNode(n.base)
		if err != nil {
			return nil, err
		}
		ix, err := e.evalNode(n.index)
		if err != nil {
			return nil, err
		}
		switch b := b.(type) {
		case []any:
			i, ok := ix.(int)
			if !ok || i < 0 || i >= len(b) {
				return nil, fmt.Errorf("index %v out of range [0,%d)", ix, len(b))
			}
			return b[i], nil
		case map[string]any:
			return e.evalNode(armProp{armLit{b}, fmt.Sprint(ix)})
		}
		return nil, fmt.Errorf("index into a %T", b)
	case armCall:
		f, ok := armFuncs[strings.ToLower(n.name)]
		if !ok {
			return nil, fmt.Errorf("function %s() is not one the tests know", n.name)
		}
		e.used[strings.ToLower(n.name)] = true
		if strings.EqualFold(n.name, "if") { // only the chosen branch is evaluated, as in ARM
			if len(n.args) != 3 {
				return nil, fmt.Errorf("if() takes 3 arguments")
			}
			c, err := e.evalNode(n.args[0])
			if err != nil {
				return nil, err
			}
			b, ok := c.(bool)
			if !ok {
				return nil, fmt.Errorf("if(): condition is a %T", c)
			}
			if b {
				return e.evalNode(n.args[1])
			}
			return e.evalNode(n.args[2])
		}
		args := make([]any, len(n.args))
		for i, a := range n.args {
			var err error
			if args[i], err = e.evalNode(a); err != nil {
				return nil, err
			}
		}
		v, err := f(e, args)
		if err != nil {
			return nil, fmt.Errorf("%s(): %w", n.name, err)
		}
		return v, nil
	}
	return nil, fmt.Errorf("bad node %T", n)
}

type armFunc func(e *armEnv, a []any) (any, error)

var armFuncs map[string]armFunc

func init() {
	armFuncs = map[string]armFunc{
		"parameters": func(e *armEnv, a []any) (any, error) {
			name, err := oneString(a)
			if err != nil {
				return nil, err
			}
			return e.param(name)
		},
		"variables": func(e *armEnv, a []any) (any, error) {
			name, err := oneString(a)
			if err != nil {
				return nil, err
			}
			return e.variable(name)
		},
		"resourcegroup": func(e *armEnv, a []any) (any, error) {
			return map[string]any{"id": "/subscriptions/" + testSubscription + "/resourceGroups/" + testGroup,
				"name": testGroup, "location": testLocation}, nil
		},
		"subscription": func(e *armEnv, a []any) (any, error) {
			return map[string]any{"id": "/subscriptions/" + testSubscription, "subscriptionId": testSubscription}, nil
		},
		"environment": func(e *armEnv, a []any) (any, error) {
			return map[string]any{"name": "AzureCloud", "suffixes": map[string]any{"storage": "core.windows.net"}}, nil
		},
		"resourceid": func(e *armEnv, a []any) (any, error) {
			return resourceID("/subscriptions/"+testSubscription+"/resourceGroups/"+testGroup, a)
		},
		"subscriptionresourceid": func(e *armEnv, a []any) (any, error) {
			return resourceID("/subscriptions/"+testSubscription, a)
		},
		"extensionresourceid": func(e *armEnv, a []any) (any, error) {
			if len(a) < 3 {
				return nil, fmt.Errorf("needs a resource ID, a type and names")
			}
			base, ok := a[0].(string)
			if !ok {
				return nil, fmt.Errorf("resource ID is a %T", a[0])
			}
			return resourceID(base, a[1:])
		},
		"reference": func(e *armEnv, a []any) (any, error) {
			if len(a) < 1 || len(a) > 2 {
				return nil, fmt.Errorf("takes a resource ID and an API version")
			}
			id, ok := a[0].(string)
			if !ok {
				return nil, fmt.Errorf("resource ID is a %T", a[0])
			}
			r, ok := e.refs[strings.ToLower(id)]
			if !ok {
				return nil, fmt.Errorf("no stub for %s", id)
			}
			return r, nil
		},
		"uniquestring": func(e *armEnv, a []any) (any, error) { // 13 characters of [a-z0-9], like Azure's
			h := sha256.Sum256([]byte(fmt.Sprint(a...)))
			return hex.EncodeToString(h[:])[:13], nil
		},
		"guid": func(e *armEnv, a []any) (any, error) {
			h := sha256.Sum256([]byte(fmt.Sprint(a...)))
			x := hex.EncodeToString(h[:16])
			return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32], nil
		},
		"newguid": func(e *armEnv, a []any) (any, error) {
			return "11111111-2222-4333-8444-555555555555", nil
		},
		"format": func(e *armEnv, a []any) (any, error) {
			if len(a) < 1 {
				return nil, fmt.Errorf("no format")
			}
			f, ok := a[0].(string)
			if !ok {
				return nil, fmt.Errorf("format is a %T", a[0])
			}
			return netFormat(f, a[1:])
		},
		"concat": func(e *armEnv, a []any) (any, error) {
			if len(a) > 0 {
				if _, ok := a[0].([]any); ok {
					var out []any
					for _, x := range a {
						arr, ok := x.([]any)
						if !ok {
							return nil, fmt.Errorf("mixes arrays and %T", x)
						}
						out = append(out, arr...)
					}
					return out, nil
				}
			}
			var b strings.Builder
			for _, x := range a {
				s, err := armString(x)
				if err != nil {
					return nil, err
				}
				b.WriteString(s)
			}
			return b.String(), nil
		},
		"replace": func(e *armEnv, a []any) (any, error) {
			s, err := strings3(a)
			if err != nil {
				return nil, err
			}
			return strings.ReplaceAll(s[0], s[1], s[2]), nil
		},
		"tolower": func(e *armEnv, a []any) (any, error) {
			s, err := oneString(a)
			return strings.ToLower(s), err
		},
		"take": func(e *armEnv, a []any) (any, error) {
			if len(a) != 2 {
				return nil, fmt.Errorf("takes 2 arguments")
			}
			n, ok := a[1].(int)
			if !ok {
				return nil, fmt.Errorf("count is a %T", a[1])
			}
			switch v := a[0].(type) {
			case string:
				return v[:min(max(n, 0), len(v))], nil
			case []any:
				return v[:min(max(n, 0), len(v))], nil
			}
			return nil, fmt.Errorf("of a %T", a[0])
		},
		"string": func(e *armEnv, a []any) (any, error) {
			if len(a) != 1 {
				return nil, fmt.Errorf("takes 1 argument")
			}
			return armString(a[0])
		},
		"base64": func(e *armEnv, a []any) (any, error) {
			s, err := oneString(a)
			return base64.StdEncoding.EncodeToString([]byte(s)), err
		},
		"equals": func(e *armEnv, a []any) (any, error) {
			if len(a) != 2 {
				return nil, fmt.Errorf("takes 2 arguments")
			}
			return equal(a[0], a[1]), nil
		},
		"not": func(e *armEnv, a []any) (any, error) {
			if len(a) != 1 {
				return nil, fmt.Errorf("takes 1 argument")
			}
			b, ok := a[0].(bool)
			if !ok {
				return nil, fmt.Errorf("of a %T", a[0])
			}
			return !b, nil
		},
		"empty": func(e *armEnv, a []any) (any, error) {
			if len(a) != 1 {
				return nil, fmt.Errorf("takes 1 argument")
			}
			switch v := a[0].(type) {
			case nil:
				return true, nil
			case string:
				return v == "", nil
			case []any:
				return len(v) == 0, nil
			case map[string]any:
				return len(v) == 0, nil
			}
			return nil, fmt.Errorf("of a %T", a[0])
		},
		"createarray": func(e *armEnv, a []any) (any, error) { return append([]any{}, a...), nil },
		"createobject": func(e *armEnv, a []any) (any, error) {
			if len(a)%2 != 0 {
				return nil, fmt.Errorf("takes key, value pairs")
			}
			m := map[string]any{}
			for i := 0; i < len(a); i += 2 {
				k, ok := a[i].(string)
				if !ok {
					return nil, fmt.Errorf("key is a %T", a[i])
				}
				m[k] = a[i+1]
			}
			return m, nil
		},
		"json": func(e *armEnv, a []any) (any, error) {
			s, err := oneString(a)
			if err != nil {
				return nil, err
			}
			var v any
			if err := json.Unmarshal([]byte(s), &v); err != nil {
				return nil, err
			}
			return normalize(v), nil
		},
		"copyindex": func(e *armEnv, a []any) (any, error) {
			if len(a) != 0 {
				return nil, fmt.Errorf("the tests know copyIndex() without arguments only")
			}
			if e.copyIx < 0 {
				return nil, fmt.Errorf("outside a copy loop")
			}
			return e.copyIx, nil
		},
		"add": func(e *armEnv, a []any) (any, error) {
			x, y, err := ints2(a)
			return x + y, err
		},
		"sub": func(e *armEnv, a []any) (any, error) {
			x, y, err := ints2(a)
			return x - y, err
		},
	}
	armFuncs["if"] = func(*armEnv, []any) (any, error) { panic("if() is evaluated lazily in evalNode") }
}

// variable evaluates a template variable once (variables cannot use
// copyIndex() without a copy section, which the template does not use).
func (e *armEnv) variable(name string) (any, error) {
	if v, ok := e.vars[name]; ok {
		return v, nil
	}
	raw, ok := obj(e.tmpl["variables"])[name]
	if !ok {
		return nil, fmt.Errorf("no variable %q", name)
	}
	if e.busy[name] {
		return nil, fmt.Errorf("variable %q refers to itself", name)
	}
	e.busy[name] = true
	defer delete(e.busy, name)
	outside := *e
	outside.copyIx = -1
	v, err := outside.eval(raw)
	if err != nil {
		return nil, fmt.Errorf("variable %q: %w", name, err)
	}
	e.vars[name] = v
	return v, nil
}

// resourceID builds an ID under base: type "A.B/x/y" with names n1, n2 is
// base/providers/A.B/x/n1/y/n2.
func resourceID(base string, a []any) (string, error) {
	if len(a) < 2 {
		return "", fmt.Errorf("needs a type and names")
	}
	typ, ok := a[0].(string)
	if !ok {
		return "", fmt.Errorf("type is a %T", a[0])
	}
	segs := strings.Split(typ, "/")
	if len(segs)-1 != len(a)-1 {
		return "", fmt.Errorf("type %s needs %d names, got %d", typ, len(segs)-1, len(a)-1)
	}
	id := base + "/providers/" + segs[0]
	for i, s := range segs[1:] {
		name, ok := a[i+1].(string)
		if !ok {
			return "", fmt.Errorf("name is a %T", a[i+1])
		}
		id += "/" + s + "/" + name
	}
	return id, nil
}

// netFormat is .NET's composite formatting, which format() uses: {0},
// {1}, ... and {{ }} for braces (no format specifiers).
func netFormat(f string, args []any) (string, error) {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		switch c := f[i]; {
		case c == '{' && i+1 < len(f) && f[i+1] == '{', c == '}' && i+1 < len(f) && f[i+1] == '}':
			b.WriteByte(c)
			i++
		case c == '{':
			end := strings.IndexByte(f[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("unclosed { in %q", f)
			}
			n, err := strconv.Atoi(f[i+1 : i+end])
			if err != nil || n < 0 || n >= len(args) {
				return "", fmt.Errorf("bad placeholder %q in %q", f[i:i+end+1], f)
			}
			s, err := armString(args[n])
			if err != nil {
				return "", err
			}
			b.WriteString(s)
			i += end
		case c == '}':
			return "", fmt.Errorf("lone } in %q", f)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// armString is string(): strings as they are, numbers in decimal, booleans
// as True/False (as ARM prints them), objects and arrays as JSON.
func armString(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case int:
		return strconv.Itoa(v), nil
	case bool:
		if v {
			return "True", nil
		}
		return "False", nil
	case nil:
		return "", nil
	}
	b, err := json.Marshal(v)
	return string(b), err
}

func equal(a, b any) bool {
	if sa, ok := a.(string); ok {
		if sb, ok := b.(string); ok {
			return strings.EqualFold(sa, sb) // ARM compares strings case-insensitively
		}
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func oneString(a []any) (string, error) {
	if len(a) != 1 {
		return "", fmt.Errorf("takes 1 argument, got %d", len(a))
	}
	s, ok := a[0].(string)
	if !ok {
		return "", fmt.Errorf("argument is a %T, not a string", a[0])
	}
	return s, nil
}

func strings3(a []any) ([3]string, error) {
	var out [3]string
	if len(a) != 3 {
		return out, fmt.Errorf("takes 3 arguments, got %d", len(a))
	}
	for i, x := range a {
		s, ok := x.(string)
		if !ok {
			return out, fmt.Errorf("argument %d is a %T, not a string", i+1, x)
		}
		out[i] = s
	}
	return out, nil
}

func ints2(a []any) (int, int, error) {
	if len(a) != 2 {
		return 0, 0, fmt.Errorf("takes 2 arguments")
	}
	x, ok1 := a[0].(int)
	y, ok2 := a[1].(int)
	if !ok1 || !ok2 {
		return 0, 0, fmt.Errorf("takes integers, got %T and %T", a[0], a[1])
	}
	return x, y, nil
}

func obj(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func toInt(v any) int {
	switch v := v.(type) {
	case int:
		return v
	case float64:
		return int(v)
	}
	return -1
}

// normalize turns JSON numbers (float64) into ints: the template has no
// fractions.
func normalize(v any) any {
	switch v := v.(type) {
	case float64:
		if v == float64(int(v)) {
			return int(v)
		}
		return v
	case map[string]any:
		for k, x := range v {
			v[k] = normalize(x)
		}
	case []any:
		for i, x := range v {
			v[i] = normalize(x)
		}
	}
	return v
}
