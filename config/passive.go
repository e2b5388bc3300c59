package config

import (
	"strconv"
	"strings"
)

// MaxPassivePaths is how many [[health.passive.path]] rules a
// configuration may have (healthcheck.MaxPathRules).
const MaxPassivePaths = 32

// PassivePath is one [[health.passive.path]]: an error rate over the
// requests whose URL path starts with Prefix, beside the global
// health.passive.error_rate and with the same meaning. Every rule whose
// prefix matches a request counts it ("/api/" and "/api/pay/" both count
// /api/pay/1), so a rule means the same whatever other rules there are.
// The match is byte-wise on the decoded path, case-sensitive: "/checkout/"
// does not match /checkout or /checkouts.
type PassivePath struct {
	Prefix      string   `toml:"prefix"`       // required; starts with "/"; unique
	ErrorRate   float64  `toml:"error_rate"`   // required, in (0, 1]
	Window      Duration `toml:"window"`       // default health.passive.window
	MinRequests int      `toml:"min_requests"` // default health.passive.min_requests
	Cooldown    Duration `toml:"cooldown"`     // default health.passive.cooldown
}

// passivePathDefaults gives each path rule the global rule's window,
// min_requests and cooldown where it does not write its own. It runs after
// those have their own defaults.
func (st *state) passivePathDefaults(pa *Passive) {
	if len(pa.Paths) == 0 {
		pa.Paths = nil
		return
	}
	for i := range pa.Paths {
		r := &pa.Paths[i]
		has := func(k string) bool { return st.elemHas(i, k, "health", "passive", "path") }
		setDur(&r.Window, has("window"), pa.Window.D())
		setInt(&r.MinRequests, has("min_requests"), pa.MinRequests)
		setDur(&r.Cooldown, has("cooldown"), pa.Cooldown.D())
	}
}

func (st *state) validatePassivePaths(rules []PassivePath) {
	if len(rules) > MaxPassivePaths {
		st.errorf("health.passive.path", "at most %d rules, got %d", MaxPassivePaths, len(rules))
		return
	}
	seen := map[string]int{}
	for i, r := range rules {
		base := "health.passive.path[" + strconv.Itoa(i) + "]"
		switch {
		case r.Prefix == "":
			st.errorf(base+".prefix", "every path rule needs a prefix, e.g. \"/checkout/\"")
		case !strings.HasPrefix(r.Prefix, "/") || hasCtl(r.Prefix) || strings.ContainsAny(r.Prefix, "?#"):
			st.errorf(base+".prefix", "%q must be a URL path starting with \"/\" (no query, fragment or control characters)", r.Prefix)
		default:
			if j, dup := seen[r.Prefix]; dup {
				st.errorf(base+".prefix", "%q is also the prefix of health.passive.path[%d]", r.Prefix, j)
			} else {
				seen[r.Prefix] = i
			}
		}
		if !(r.ErrorRate > 0 && r.ErrorRate <= 1) {
			st.errorf(base+".error_rate", "must be in (0, 1], got %v (remove the rule to turn it off)", r.ErrorRate)
		}
		// Defaulted values say where they came from.
		from := func(key string) string {
			if st.elemHas(i, key, "health", "passive", "path") {
				return ""
			}
			return ", from health.passive." + key
		}
		if r.Window <= 0 {
			st.errorf(base+".window", "must be positive (got %s%s)", r.Window, from("window"))
		}
		if r.MinRequests < 1 {
			st.errorf(base+".min_requests", "must be at least 1 (got %d%s)", r.MinRequests, from("min_requests"))
		}
		if r.Cooldown <= 0 {
			st.errorf(base+".cooldown", "must be positive (got %s%s)", r.Cooldown, from("cooldown"))
		}
	}
}

// elemHas reports whether element i of the array of tables at path writes
// key.
func (st *state) elemHas(i int, key string, path ...string) bool {
	var cur any = st.raw
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		cur = m[p]
	}
	var elem any
	switch arr := cur.(type) {
	case []map[string]any:
		if i < len(arr) {
			elem = arr[i]
		}
	case []any:
		if i < len(arr) {
			elem = arr[i]
		}
	}
	m, ok := elem.(map[string]any)
	if !ok {
		return false
	}
	_, ok = m[key]
	return ok
}
