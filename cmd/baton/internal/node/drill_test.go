package node

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDrillResultIsKept: POST /drill/result needs the token, refuses what
// does not add up, and keeps the last result for /status and the metrics.
func TestDrillResultIsKept(t *testing.T) {
	n := startTestNode(t, "a", filepath.Join(t.TempDir(), "lease"), "")
	admin := "http://" + n.Addr("admin.listen")
	post := func(token, body string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, admin+"/drill/result", strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	fams := scrape(t, n.Node)
	if _, ok := fams["baton_drill_failed_requests"]; ok {
		t.Errorf("drill metrics before any drill")
	}
	newActive := 41.5
	good := DrillResult{URL: "http://lb/", Node: "a", Rate: 50, Requests: 400, Succeeded: 398, Failed: 2, Timeouts: 1,
		FailedStatuses: map[string]int{"503": 1}, LongestGapMS: 120, NewActive: "b; term=2", NewActiveMS: &newActive,
		Started: time.Now().Add(-9 * time.Second), Finished: time.Now()}
	body, _ := json.Marshal(good)
	if code := post("", string(body)); code != http.StatusUnauthorized {
		t.Errorf("without the token: %d, want 401", code)
	}
	if code := post("wrong", string(body)); code != http.StatusForbidden {
		t.Errorf("with a wrong token: %d, want 403", code)
	}
	bad := good
	bad.Failed = 7 // 398 + 7 != 400
	badBody, _ := json.Marshal(bad)
	for _, b := range []string{string(badBody), "{", `{"requests": -1}`, `{"failed_statuses": {"abc": 1}}`,
		`{"url": "` + strings.Repeat("x", maxDrillBody) + `"}`} {
		if code := post("tok", b); code != http.StatusBadRequest {
			t.Errorf("body %.40q: %d, want 400", b, code)
		}
	}
	if st := n.Status(); st.LastDrill != nil {
		t.Fatalf("a refused result was kept: %+v", st.LastDrill)
	}
	if code := post("tok", string(body)); code != http.StatusOK {
		t.Fatalf("good result: %d, want 200", code)
	}
	st := n.Status()
	if d := st.LastDrill; d == nil || d.Failed != 2 || d.Requests != 400 || d.RecordedAt.IsZero() || *d.NewActiveMS != 41.5 {
		t.Fatalf("last_drill %+v", st.LastDrill)
	}
	fams = scrape(t, n.Node)
	for name, want := range map[string]float64{
		"baton_drill_requests": 400, "baton_drill_failed_requests": 2, "baton_drill_longest_gap_seconds": 0.12,
		"baton_drill_new_active_seconds": 0.0415, "baton_drill_success": 0,
	} {
		if got := gauge(fams, name, "", ""); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if ts := gauge(fams, "baton_drill_timestamp_seconds", "", ""); time.Since(time.Unix(int64(ts), 0)) > time.Minute {
		t.Errorf("baton_drill_timestamp_seconds = %v, want about now", ts)
	}
	// /status carries it as JSON too.
	res, err := http.Get(admin + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var doc struct {
		LastDrill map[string]any `json:"last_drill"`
	}
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil || doc.LastDrill["failed"] != 2.0 || doc.LastDrill["new_active"] != "b; term=2" {
		t.Errorf("/status last_drill %v (%v)", doc.LastDrill, err)
	}
}
