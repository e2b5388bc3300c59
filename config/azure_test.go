package config

import (
	"strings"
	"testing"
)

// TestAzureDefaults: the scheduled events watcher is on by default only
// with the azblob lease (a node on Azure); an explicit value wins.
func TestAzureDefaults(t *testing.T) {
	const azblob = "[lease.azblob]\naccount_url = \"https://a.blob.core.windows.net\"\n"
	for _, c := range []struct {
		name, doc string
		want      bool
	}{
		{"azblob", azblob, true},
		{"file", fileLease, false},
		{"azblob, off", azblob + "[azure]\nscheduled_events = false\n", false},
		{"file, on", fileLease + "[azure]\nscheduled_events = true\n", true},
	} {
		cfg := mustLoad(t, c.doc)
		if got := cfg.Azure.WatchScheduledEvents(); got != c.want {
			t.Errorf("%s: scheduled_events %t, want %t", c.name, got, c.want)
		}
		if cfg.Azure.IMDSURL != "http://169.254.169.254" || len(cfg.Azure.StepDownOn) != 5 || cfg.Azure.Approve {
			t.Errorf("%s: %+v", c.name, cfg.Azure)
		}
	}
	cfg := mustLoad(t, fileLease+"[azure]\nscheduled_events = true\nimds_url = \"http://127.0.0.1:9/\"\nstep_down_on = [\"Reboot\"]\napprove = true\n")
	if a := cfg.Azure; a.IMDSURL != "http://127.0.0.1:9/" || strings.Join(a.StepDownOn, ",") != "Reboot" || !a.Approve {
		t.Errorf("explicit values: %+v", a)
	}
	// A misspelt type names the right one.
	_, err := load(t, fileLease+"[azure]\nstep_down_on = [\"freeze\", \"Reboot\", \"Reboot\"]\n")
	es := Errors(err)
	if len(es) != 1 || es[0].Key != "azure.step_down_on" || !strings.Contains(es[0].Msg, `did you mean "Freeze"?`) || es[0].Line != 4 {
		t.Errorf("got %v", err)
	}
}
