package monitoring

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/batonproxy/baton/config"
	"github.com/batonproxy/baton/deploy/internal/deploytest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	deploytest.Cleanup()
	os.Exit(code)
}

const (
	rulesFile     = "baton.rules.yml"
	rulesTestFile = "baton.rules.test.yml"
	dashboardFile = "baton-pair.dashboard.json"
)

func promtool(t *testing.T) string {
	t.Helper()
	return deploytest.Tool(t, "promtool", "scripts/install-promtool.sh")
}

// TestRulesCheck: promtool's own check of the rule file (syntax, PromQL,
// templates).
func TestRulesCheck(t *testing.T) {
	out, code := deploytest.Run(t, "", promtool(t), "check", "rules", rulesFile)
	if code != 0 || !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool check rules (exit %d):\n%s", code, out)
	}
	t.Log(strings.TrimSpace(out))
}

// TestRulesUnitTests runs the rules' unit tests, and checks that each
// alert is shown firing by at least one of them.
func TestRulesUnitTests(t *testing.T) {
	pt := promtool(t)
	v, _ := deploytest.Run(t, "", pt, "--version")
	out, code := deploytest.Run(t, "", pt, "test", "rules", rulesTestFile)
	if code != 0 || !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules (exit %d):\n%s", code, out)
	}
	t.Logf("%s: %s", strings.SplitN(v, "\n", 2)[0], strings.TrimSpace(out))

	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(rulesTestFile)
	if err != nil {
		t.Fatal(err)
	}
	fired := map[string]bool{}
	for _, m := range regexp.MustCompile(`alertname: (\w+)\n\s+exp_alerts:`).FindAllStringSubmatch(string(tests), -1) {
		fired[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`(?m)^\s+- alert: (\w+)$`).FindAllStringSubmatch(string(rules), -1) {
		if !fired[m[1]] {
			t.Errorf("no unit test shows alert %s firing", m[1])
		}
	}
}

// TestNoActiveNodeWaitsOutAFailover: BatonNoActiveNode must not fire
// during a failover that goes as check-config promises at the default
// timing (a killed active: lease duration + retry + probe interval), seen
// through a 15s scrape and a 15s evaluation.
func TestNoActiveNodeWaitsOutAFailover(t *testing.T) {
	cfg, err := config.Load(filepath.Join(deploytest.RepoRoot(), "baton.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	budget := cfg.Timing().CrashFailover
	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`- alert: BatonNoActiveNode\n(?:.*\n)*?\s+for: (\S+)`).FindSubmatch(rules)
	if m == nil {
		t.Fatal("BatonNoActiveNode has no for:")
	}
	d, err := time.ParseDuration(string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	const scrape, eval = 15 * time.Second, 15 * time.Second
	if d < budget+scrape+eval {
		t.Errorf("BatonNoActiveNode waits %s, less than the failover budget %s plus a scrape and an evaluation", d, budget)
	}
	t.Logf("failover budget %s (lease.duration + retry_interval + lb_interval); BatonNoActiveNode waits %s", budget, d)
}

// dashboard is the part of the Grafana dashboard the tests read.
type dashboard struct {
	Panels []struct {
		ID      int    `json:"id"`
		Type    string `json:"type"`
		Title   string `json:"title"`
		GridPos *struct {
			X, Y, W, H int
		} `json:"gridPos"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// grafanaVars stands in for the dashboard's variables, so its queries are
// PromQL that promtool can check.
var grafanaVars = strings.NewReplacer("$__rate_interval", "1m", "$job", "baton", "$instance", ".*")

// dashboardQueries returns every PromQL query of the dashboard, named by
// panel and target, with the variables replaced; label_values(SELECTOR,
// LABEL) of a template variable gives its SELECTOR.
func dashboardQueries(t *testing.T) map[string]string {
	t.Helper()
	d := loadDashboard(t)
	q := map[string]string{}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			q[fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, tg.RefID)] = grafanaVars.Replace(tg.Expr)
		}
	}
	lv := regexp.MustCompile(`^label_values\((.*), *\w+\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := lv.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Fatalf("variable %s: %q is not label_values(SELECTOR, LABEL)", v.Name, v.Definition)
		}
		q["variable "+v.Name] = grafanaVars.Replace(m[1])
	}
	return q
}

// TestDashboard: the dashboard is well formed (unique panel IDs, every
// panel placed and on the ${datasource} variable) and promtool accepts each
// of its queries, checked as recording rules in a generated rule file.
func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	seen := map[int]bool{}
	for _, p := range d.Panels {
		if seen[p.ID] {
			t.Errorf("panel ID %d twice", p.ID)
		}
		seen[p.ID] = true
		if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
			t.Errorf("panel %d %q has no place", p.ID, p.Title)
		}
		if p.Type != "row" && (p.Datasource.UID != "${datasource}" || len(p.Targets) == 0) {
			t.Errorf("panel %d %q: datasource %q, %d queries", p.ID, p.Title, p.Datasource.UID, len(p.Targets))
		}
	}
	queries := dashboardQueries(t)
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range queries {
			if !yield(k) {
				return
			}
		}
	})
	var b strings.Builder
	b.WriteString("# generated by deploy/monitoring's TestDashboard from " + dashboardFile + "\ngroups:\n  - name: dashboard\n    rules:\n")
	for i, name := range names {
		js, _ := json.Marshal(queries[name]) // a JSON string is a YAML string
		fmt.Fprintf(&b, "      # %s\n      - record: baton_dashboard:query_%d\n        expr: %s\n", name, i, js)
	}
	f := filepath.Join(t.TempDir(), "dashboard.rules.yml")
	if err := os.WriteFile(f, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := deploytest.Run(t, "", promtool(t), "check", "rules", f)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("SUCCESS: %d rules found", len(queries))) {
		t.Fatalf("promtool check rules on the dashboard's queries (exit %d):\n%s\n%s", code, out, b.String())
	}
	t.Logf("promtool accepts the dashboard's %d queries", len(queries))
}
