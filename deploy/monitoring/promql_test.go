package monitoring

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// promqlKeywords are PromQL's words that are not metric names (a rule
// cannot select a metric called sum or by without quoting it).
var promqlKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"bool": true, "offset": true, "and": true, "or": true, "unless": true, "atan2": true,
	"inf": true, "nan": true,
	// aggregation operators, which may stand before "by (...)" instead of "("
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
}

// labelListAfter are the keywords followed by a list of label names.
var labelListAfter = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

// metricNames returns the metric names a PromQL expression selects. It is
// a lexer, not a parser (promtool checks the syntax): strings, label
// matchers and ranges are skipped, so are function and aggregation names
// (an identifier before "(") and label lists after by, without, on,
// ignoring, group_left and group_right; the identifiers left are metric
// names.
func metricNames(expr string) []string {
	var names []string
	s := expr
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(s) && s[j] != c {
				if s[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			i = j + 1
		case c == '{':
			i = skipTo(s, i, '}')
		case c == '[':
			i = skipTo(s, i, ']')
		case c == '#': // a comment to the end of the line
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c >= '0' && c <= '9' || c == '.':
			for i < len(s) && (isNameChar(s[i]) || s[i] == '.') {
				i++
			}
		case isNameStart(c):
			j := i
			for j < len(s) && isNameChar(s[j]) {
				j++
			}
			word := s[i:j]
			k := j
			for k < len(s) && (s[k] == ' ' || s[k] == '\n' || s[k] == '\t') {
				k++
			}
			switch {
			case labelListAfter[strings.ToLower(word)] && k < len(s) && s[k] == '(':
				j = skipTo(s, k, ')')
			case promqlKeywords[strings.ToLower(word)]:
			case k < len(s) && s[k] == '(': // a function or an aggregation
			default:
				if !slices.Contains(names, word) {
					names = append(names, word)
				}
			}
			i = j
		default:
			i++
		}
	}
	return names
}

// skipTo returns the index after the closing byte matching s[i], skipping
// quoted strings inside.
func skipTo(s string, i int, closing byte) int {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '"', '\'':
			q := s[j]
			for j++; j < len(s) && s[j] != q; j++ {
				if s[j] == '\\' {
					j++
				}
			}
		case closing:
			return j + 1
		}
	}
	return len(s)
}

func isNameStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isNameChar(c byte) bool { return isNameStart(c) || c >= '0' && c <= '9' }

func TestMetricNamesLexer(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum by (job) (baton_role{role="active"}) > 1`:                                                          {"baton_role"},
		`(sum by (job) (baton_role{role="active"}) or sum by (job) (up{job=~"baton.*"}) * 0) < 1`:               {"baton_role", "up"},
		`histogram_quantile(0.99, sum by (instance, le) (rate(baton_lease_renew_duration_seconds_bucket[1m])))`: {"baton_lease_renew_duration_seconds_bucket"},
		`(a == 1) and on (job, instance) (b == 0)`:                                                              {"a", "b"},
		`x / ignoring(code) group_left(path) y offset 5m`:                                                       {"x", "y"},
		`sum(rate(m{l="}"}[5m])) without (instance)`:                                                            {"m"},
		`c - time() < 14 * 86400 and bool 1e3`:                                                                  {"c"},
		`max_over_time(g[10m:1m]) # a comment naming not_a_metric`:                                              {"g"},
	} {
		if got := metricNames(expr); !slices.Equal(got, want) {
			t.Errorf("metricNames(%s) = %v, want %v", expr, got, want)
		}
	}
}

// ruleExprs returns the expr of every rule in the rule file. The file
// writes each expr on one line or as a "|" block.
func ruleExprs(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	out := map[string]string{}
	alert := ""
	head := regexp.MustCompile(`^\s+- (?:alert|record): (\S+)$`)
	exprLine := regexp.MustCompile(`^(\s+)expr: (.*)$`)
	for i := 0; i < len(lines); i++ {
		if m := head.FindStringSubmatch(lines[i]); m != nil {
			alert = m[1]
			continue
		}
		m := exprLine.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		if m[2] != "|" {
			out[alert] = m[2]
			continue
		}
		var b strings.Builder
		for i+1 < len(lines) && (strings.TrimSpace(lines[i+1]) == "" || len(lines[i+1]) > len(m[1]) && strings.TrimSpace(lines[i+1][:len(m[1])+1]) == "") {
			i++
			b.WriteString(lines[i] + "\n")
		}
		out[alert] = b.String()
	}
	if len(out) == 0 {
		t.Fatal("no rules found")
	}
	return out
}
