package config

import (
	"strings"
	"testing"
)

func TestIdentifyHeader(t *testing.T) {
	if c := mustLoad(t, fileLease); c.Backend.IdentifyHeader != "" {
		t.Errorf("default backend.identify_header %q, want \"\" (off)", c.Backend.IdentifyHeader)
	}
	if c := mustLoad(t, fileLease+"[backend]\nidentify_header = \"Baton-Node\"\n"); c.Backend.IdentifyHeader != "Baton-Node" {
		t.Errorf("backend.identify_header %q, want Baton-Node", c.Backend.IdentifyHeader)
	}
	for _, tc := range []struct{ toml, want string }{
		{`identify_header = "Baton Node"`, "not a valid HTTP header name"},
		{`identify_header = "content-length"`, "a standard header of the answer"},
		{`identify_header = "Set-Cookie"`, "a standard header of the answer"},
		{`identify_header = "baton-term"`, "backend.fencing_header too"},
	} {
		_, err := load(t, fileLease+"[backend]\n"+tc.toml+"\n")
		if err == nil || !strings.Contains(err.Error(), "backend.identify_header") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want backend.identify_header: ...%s", tc.toml, err, tc.want)
		}
	}
	// With the fencing header off, its name is free.
	mustLoad(t, fileLease+"[backend]\nfencing_header = \"\"\nidentify_header = \"Baton-Term\"\n")
}
