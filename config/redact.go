package config

import (
	"bytes"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Redacted is the effective configuration (defaults filled, templates
// resolved) as TOML, for `baton check-config`. The configuration holds no
// secret values, only where to read them; anything that could still be one
// (credentials or a SAS query in a URL, an Authorization-like check header)
// is replaced by "REDACTED". [runtime] keys the file did not write are
// shown as comments, since writing them would override GOGC / GOMEMLIMIT.
// Without redacted values, the output loads back (in the same environment)
// to an equal Config.
func (c *Config) Redacted() string {
	r := *c
	az := &r.Lease.AzBlob
	az.AccountURL = redactURL(az.AccountURL, true)
	r.Backend.URL = redactURL(r.Backend.URL, false)
	r.Drain.AdvertiseURL = redactURL(r.Drain.AdvertiseURL, false)
	r.TLS.ACME.CA = redactURL(r.TLS.ACME.CA, false)
	r.Health.Checks = slices.Clone(r.Health.Checks)
	for i := range r.Health.Checks {
		ch := &r.Health.Checks[i]
		ch.URL = redactURL(ch.URL, false)
		if ch.Headers != nil {
			ch.Headers = maps.Clone(ch.Headers)
			for k := range ch.Headers {
				if secretHeader(k) {
					ch.Headers[k] = "REDACTED"
				}
			}
		}
	}

	// [runtime] keys the file did not write stay unwritten, so the output
	// loads back with the same origins: a written default would override
	// GOGC / GOMEMLIMIT. Comments say what applies instead.
	r.Runtime = Runtime{}
	if c.Runtime.GCPercentFrom == OriginConfig {
		r.Runtime.GCPercent = c.Runtime.GCPercent
	}
	if c.Runtime.MemoryLimitFrom == OriginConfig {
		r.Runtime.MemoryLimit = c.Runtime.MemoryLimit
	}

	var b bytes.Buffer
	b.WriteString("# effective configuration: defaults filled in, templates resolved, secrets redacted\n")
	if c.Path != "" {
		b.WriteString("# loaded from " + c.Path + "\n")
	}
	b.WriteString("\n")
	enc := toml.NewEncoder(&b)
	enc.Indent = ""
	if err := enc.Encode(r); err != nil {
		// Only a programming error (an unencodable type) gets here.
		return "# cannot encode configuration: " + err.Error() + "\n"
	}
	out := strings.TrimRight(b.String(), "\n") + "\n"
	if !strings.Contains(out, "\n[runtime]\n") {
		out += "\n[runtime]\n"
	}
	// [runtime] is the last table (see Config): the comments land in it.
	for _, k := range []struct {
		key, env, def string
		from          Origin
	}{
		{"gc_percent", "GOGC", strconv.Itoa(DefaultGCPercent), c.Runtime.GCPercentFrom},
		{"memory_limit", "GOMEMLIMIT", strconv.Quote(DefaultMemoryLimit), c.Runtime.MemoryLimitFrom},
	} {
		switch k.from {
		case OriginDefault:
			out += "# " + k.key + " = " + k.def + " (baton's default, as " + k.env + " is not set)\n"
		case OriginEnv:
			out += "# " + k.key + ": not set here; the Go runtime follows " + k.env + "\n"
		}
	}
	return out
}

// redactURL hides user info, the values of credential-like query
// parameters and, with dropQuery, the whole query string and fragment. With
// dropQuery, a value that is not an absolute URL (a connection string pasted
// into account_url, say) is hidden entirely.
// RedactURL returns s with its user info and the values of query keys that
// look secret (token, key, sig, password, ...) replaced by REDACTED, as
// check-config prints it: for what /status and the logs show.
func RedactURL(s string) string { return redactURL(s, false) }

func redactURL(s string, dropQuery bool) string {
	if s == "" {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || (dropQuery && (u.Scheme == "" || u.Host == "")) {
		return "REDACTED"
	}
	changed := false
	if u.User != nil {
		u.User = url.User("REDACTED")
		changed = true
	}
	if u.RawQuery != "" {
		if dropQuery {
			u.RawQuery = "REDACTED"
			changed = true
		} else if q := u.Query(); redactQuery(q) {
			u.RawQuery = q.Encode()
			changed = true
		}
	}
	if u.Fragment != "" && dropQuery {
		u.Fragment, u.RawFragment = "REDACTED", ""
		changed = true
	}
	if !changed {
		return s
	}
	return u.String()
}

var secretWords = []string{"sig", "token", "key", "secret", "pass", "auth", "credential", "session", "cookie", "code"}

func looksSecret(name string) bool {
	n := strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// redactQuery replaces the values of credential-like parameters; it
// reports whether there was any.
func redactQuery(q url.Values) bool {
	found := false
	for k := range q {
		if looksSecret(k) {
			q[k] = []string{"REDACTED"}
			found = true
		}
	}
	return found
}

func secretHeader(name string) bool { return looksSecret(name) }
