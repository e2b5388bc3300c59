package config

import (
	"strings"
	"testing"
	"time"
)

func TestTimingDefaults(t *testing.T) {
	c := mustLoad(t, "[lease.azblob]\naccount_url = \"https://a.blob.core.windows.net\"\n")
	tm := c.Timing()
	checks := []struct {
		name      string
		got, want time.Duration
	}{
		{"planned", tm.PlannedFailover, 6 * time.Second},
		{"crash", tm.CrashFailover, 21 * time.Second},
		{"unhealthy", tm.UnhealthyFailover, 2*2*time.Second + time.Second + 2*time.Second + time.Second + 5*time.Second},
		{"fence", tm.FenceAfter, 10 * time.Second},
		{"margin", tm.SafetyMargin, 5 * time.Second},
		{"detect", tm.HealthDetect, 5 * time.Second},
		{"call timeout", tm.CallTimeout, 2 * time.Second},
		{"restart", tm.RestartFailover, 2*time.Second + time.Second + 5*time.Second},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	eq(t, tm.HealthCheck, "backend")
	if len(tm.Warnings) != 0 {
		t.Errorf("defaults warn: %q", tm.Warnings)
	}
	s := tm.String()
	for _, want := range []string{"planned switchover", "≈ 6s", "≈ 21s", "≈ 13s", `check "backend"`} {
		if !strings.Contains(s, want) {
			t.Errorf("table lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "warnings") {
		t.Errorf("table has a warnings section:\n%s", s)
	}
}

func TestTimingWorstRequiredCheck(t *testing.T) {
	c := mustLoad(t, fileLease+`
[[health.check]]
name = "fast"
[[health.check]]
name = "slow"
interval = "10s"
timeout = "3s"
fall = 4
[[health.check]]
name = "optional"
interval = "60s"
fall = 10
required = false
`)
	tm := c.Timing()
	eq(t, tm.HealthCheck, "slow")
	eq(t, tm.HealthDetect, 43*time.Second)
	eq(t, tm.CallTimeout, time.Duration(0)) // file lease
	eq(t, tm.UnhealthyFailover, 43*time.Second+time.Second+5*time.Second)
}

func TestTimingDeadVM(t *testing.T) {
	c := mustLoad(t, fileLease+"[probe]\nlb_interval = \"30s\"\nlb_threshold = 4\n")
	// 4 timed-out probes of 30s outlast duration + retry + one probe.
	eq(t, c.Timing().CrashFailover, 120*time.Second)
}

func TestTimingWarnings(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"file lease", fileLease, "the file lease coordinates processes on ONE host only; it cannot coordinate two VMs"},
		{"thin margin", fileLease + "renew_deadline = \"14s\"\n", "lease.duration - lease.renew_deadline is only 1s"},
		{"two renews", fileLease + "renew_interval = \"5s\"\n", "allows only 2 renew attempts every 5s"},
		{"no back-off", fileLease + "candidacy_backoff = \"0s\"\n", "flapping"},
		{"slow retry", fileLease + "retry_interval = \"8s\"\n", "lease.retry_interval 8s is slow"},
		{"slow probe", fileLease + "[probe]\nlb_interval = \"20s\"\n", "probe.lb_interval 20s is slow"},
		{"fast probe", fileLease + "[probe]\nlb_interval = \"2s\"\n", "below the Azure Load Balancer minimum of 5s"},
		{"threshold", fileLease + "[probe]\nlb_threshold = 2\n", "probe.lb_threshold 2 only matters when probes time out"},
		{"short exit delay", fileLease + "[drain]\nexit_delay = \"2s\"\n", "drain.exit_delay 2s is shorter than probe.lb_interval × probe.lb_threshold (5s)"},
		{"short hold", fileLease + "[drain]\nhold = \"0s\"\n", "drain.hold 0s is shorter than lease.retry_interval (1s)"},
		{"long stop", fileLease + "[drain]\ntimeout = \"2m\"\n", "drain.exit_delay + drain.timeout = 2m6s"},
		{"slow crash failover", fileLease + "duration = \"60s\"\nrenew_deadline = \"50s\"\nretry_interval = \"5s\"\n", "a crashed active is replaced only after about 1m10s"},
		{"no required check", fileLease + "[[health.check]]\nname = \"a\"\nrequired = false\n", "no required health check"},
		{"slow detection", fileLease + "[[health.check]]\nname = \"a\"\ninterval = \"30s\"\nfall = 3\n", "noticed only after about 1m31s"},
		{"skip verify", fileLease + "[[health.check]]\nname = \"a\"\nurl = \"https://127.0.0.1/\"\ntls_skip_verify = true\n", `health check "a" has tls_skip_verify = true`},
		{"admin on the network", fileLease + "[admin]\nlisten = \"0.0.0.0:8082\"\n", "is not a loopback address"},
		{"loopback advertise url", "[listen]\nhttp = \"127.0.0.1:80\"\n[lease.azblob]\naccount_url = \"https://a.blob.core.windows.net\"\n", `drain.advertise_url "http://127.0.0.1:80" is a loopback address`},
		{"plain http storage", "[lease.azblob]\naccount_url = \"http://storage.internal:10000/acct\"\n", "uses plain http to a remote host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, tt.doc)
			tm := c.Timing()
			found := false
			for _, w := range tm.Warnings {
				found = found || strings.Contains(w, tt.want)
			}
			if !found {
				t.Errorf("no warning %q in %q", tt.want, tm.Warnings)
			}
			if !strings.Contains(tm.String(), "warnings\n  - ") {
				t.Errorf("table has no warnings section:\n%s", tm.String())
			}
		})
	}
}

func TestTimingPeerLink(t *testing.T) {
	c := mustLoad(t, "[lease]\nbackend = \"file\"\n[peer]\nlisten = \"127.0.0.1:8083\"\npeers = [\"127.0.0.2:8083\"]\nsecret_env = \"S\"\ntimeout = \"1s\"\n")
	tm := c.Timing()
	if tm.Peers != 1 {
		t.Errorf("peers = %d", tm.Peers)
	}
	out := tm.String()
	if !strings.Contains(out, "on, 1 peer(s)") || !strings.Contains(out, "step-down -to NODE") {
		t.Errorf("table:\n%s", out)
	}
	found := false
	for _, w := range tm.Warnings {
		found = found || strings.Contains(w, "peer.timeout 1s is not shorter than lease.retry_interval")
	}
	if !found {
		t.Errorf("no warning about the slow peer timeout: %q", tm.Warnings)
	}
}
