package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRedactedRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("testdata/good/*.toml")
	files = append(files, "../baton.example.toml")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			c, err := testLoader().load(data, f)
			if err != nil {
				t.Fatal(err)
			}
			out := c.Redacted()
			if strings.Contains(out, "REDACTED") {
				t.Fatalf("nothing to redact, yet:\n%s", out)
			}
			c2, err := testLoader().load([]byte(out), "redacted.toml")
			if err != nil {
				t.Fatalf("redacted output does not load: %v\n%s", err, out)
			}
			if d := diff(c2, c); d != "" {
				t.Errorf("round trip changed the config: %s\n%s", d, out)
			}
		})
	}
}

func TestRedactedHidesSecrets(t *testing.T) {
	c := mustLoad(t, fileLease+`
[[health.check]]
name = "a"
url = "http://127.0.0.1:8080/health?token=SECRET1&x=1"
[health.check.headers]
Authorization = "Bearer SECRET2"
X-Api-Key = "SECRET3"
X-Trace = "visible"
`)
	orig := c.Health.Checks[0].Headers["Authorization"]
	tests := []struct {
		name string
		set  func(c *Config)
	}{
		{"sas in account_url", func(c *Config) {
			c.Lease.AzBlob.AccountURL = "https://a.blob.core.windows.net/?sv=2022&sig=SECRET4"
		}},
		{"connection string in account_url", func(c *Config) {
			c.Lease.AzBlob.AccountURL = "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=SECRET5"
		}},
		{"user info in account_url", func(c *Config) {
			c.Lease.AzBlob.AccountURL = "https://user:SECRET6@a.blob.core.windows.net/"
		}},
		{"password in backend url", func(c *Config) { c.Backend.URL = "http://u:SECRET7@127.0.0.1:8080/" }},
		{"password in advertise url", func(c *Config) { c.Drain.AdvertiseURL = "http://u:SECRET8@10.0.0.1/" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc := *c
			tt.set(&cc)
			out := cc.Redacted()
			if strings.Contains(out, "SECRET") {
				t.Errorf("secret in output:\n%s", out)
			}
			for _, want := range []string{"REDACTED", `X-Trace = "visible"`, "x=1"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
	if c.Health.Checks[0].Headers["Authorization"] != orig {
		t.Error("Redacted modified the config")
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct {
		in        string
		dropQuery bool
		want      string
	}{
		{"", true, ""},
		{"https://a.blob.core.windows.net", true, "https://a.blob.core.windows.net"},
		{"https://a.blob.core.windows.net/?sv=1&sig=x", true, "https://a.blob.core.windows.net/?REDACTED"},
		{"http://127.0.0.1/?a=1", false, "http://127.0.0.1/?a=1"},
		{"http://127.0.0.1/?access_token=1&b=2", false, "http://127.0.0.1/?access_token=REDACTED&b=2"},
		{"http://u:p@127.0.0.1/", false, "http://REDACTED@127.0.0.1/"},
		{"AccountKey=abc;x=y", true, "REDACTED"},
		{"%zz", false, "REDACTED"},
	}
	for _, tt := range tests {
		if got := redactURL(tt.in, tt.dropQuery); got != tt.want {
			t.Errorf("redactURL(%q, %v) = %q, want %q", tt.in, tt.dropQuery, got, tt.want)
		}
	}
}
