package config

import (
	"testing"
	"time"
)

func TestPassivePathDefaults(t *testing.T) {
	c, err := Load("testdata/good/passive-paths.toml")
	if err != nil {
		t.Fatal(err)
	}
	got := c.Health.Passive.Paths
	want := []PassivePath{
		{Prefix: "/checkout/", ErrorRate: 0.5, Window: Duration(10 * time.Second), MinRequests: 20, Cooldown: Duration(30 * time.Second)},
		// What the rule does not write comes from [health.passive].
		{Prefix: "/api/", ErrorRate: 0.25, Window: Duration(20 * time.Second), MinRequests: 40, Cooldown: Duration(time.Minute)},
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("paths %+v, want %+v", got, want)
	}
	// Without [health.passive] keys, the global defaults.
	c = mustLoad(t, fileLease+"[[health.passive.path]]\nprefix = \"/x/\"\nerror_rate = 1\n")
	if p := c.Health.Passive.Paths[0]; p.Window.D() != 10*time.Second || p.MinRequests != 20 || p.Cooldown.D() != 30*time.Second {
		t.Fatalf("path %+v, want the global defaults 10s, 20, 30s", p)
	}
	if c := mustLoad(t, fileLease); c.Health.Passive.Paths != nil {
		t.Fatalf("no rules: %#v, want nil", c.Health.Passive.Paths)
	}
}
