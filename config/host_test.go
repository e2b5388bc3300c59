package config

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hostFile writes doc to dir/name and loads it as Load would (with the test
// loader's host name).
func hostFile(t *testing.T, dir, name, doc string) *Config {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := testLoader().load([]byte(doc), p)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	c.Path = p
	return c
}

// ports is a config's own listeners and its file lease (in the folder
// state when it is not empty).
func ports(http, probe, admin int, lease string, state ...string) string {
	stateDir := ""
	if len(state) > 0 {
		stateDir = fmt.Sprintf("state_dir = %q\n", state[0])
	}
	return fmt.Sprintf(`[listen]
http = "127.0.0.1:%d"
[probe]
listen = "127.0.0.1:%d"
[admin]
listen = "127.0.0.1:%d"
[lease]
backend = "file"
%s[lease.file]
path = %q
`, http, probe, admin, stateDir, lease)
}

var testHosts = HostCheck{
	Resolve: func(_ context.Context, host string) ([]netip.Addr, error) {
		switch host {
		case "app.internal":
			return []netip.Addr{netip.MustParseAddr("10.0.0.5")}, nil
		case "dual.internal":
			return []netip.Addr{netip.MustParseAddr("::1"), netip.MustParseAddr("127.0.0.1")}, nil
		}
		return nil, errors.New("no such host")
	},
	Secret: func(env, file string) (string, error) {
		if env == "BATON_TEST_CS" {
			return "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0;EndpointSuffix=core.windows.net", nil
		}
		return "", errors.New("not set")
	},
}

func conflictText(cs []HostConflict) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString(c.Error() + "\n")
	}
	return b.String()
}

func TestHostConflictsNone(t *testing.T) {
	dir := t.TempDir()
	a := hostFile(t, dir, "a.toml", ports(8080, 8081, 8082, filepath.Join(dir, "l1")))
	b := hostFile(t, dir, "b.toml", ports(9080, 9081, 9082, filepath.Join(dir, "l2")))
	if cs := testHosts.Conflicts([]*Config{a, b}); len(cs) != 0 {
		t.Errorf("conflicts between distinct configurations:\n%s", conflictText(cs))
	}
}

// Two files that write nothing but their leases share every default port,
// and the report says the values are defaults.
func TestHostConflictsDefaults(t *testing.T) {
	dir := t.TempDir()
	a := hostFile(t, dir, "a.toml", "[lease]\nbackend = \"file\"\n[lease.file]\npath = \"/tmp/l1\"\n")
	b := hostFile(t, dir, "b.toml", "[lease]\nbackend = \"file\"\n[lease.file]\npath = \"/tmp/l2\"\n")
	cs := testHosts.Conflicts([]*Config{a, b})
	var keys []string
	for _, c := range cs {
		keys = append(keys, c.A.Key+"/"+c.B.Key)
		if !c.A.Default || !c.B.Default {
			t.Errorf("%v: not marked as defaults", c)
		}
	}
	if got, want := strings.Join(keys, " "), "listen.http/listen.http probe.listen/probe.listen admin.listen/admin.listen"; got != want {
		t.Errorf("conflicts %s, want %s:\n%s", got, want, conflictText(cs))
	}
	if got := cs[0].Error(); !strings.Contains(got, `a.toml: listen.http = ":80" (default) and `) ||
		!strings.Contains(got, `both listen on port 80 (":80" listens on every address)`) {
		t.Errorf("message: %s", got)
	}
}

func TestHostConflictsListeners(t *testing.T) {
	for _, tc := range []struct {
		a, b string // listen.http of each (the other listeners differ)
		want string // "" for no conflict, else part of the message
	}{
		{"127.0.0.1:80", "127.0.0.1:80", "both listen on 127.0.0.1:80"},
		{"127.0.0.1:80", "127.0.0.1:81", ""},
		{"127.0.0.1:80", "127.0.0.2:80", ""},
		{"0.0.0.0:80", "127.0.0.1:80", `("0.0.0.0:80" listens on every address)`},
		{"10.1.2.3:80", "[::]:80", `("[::]:80" listens on every address)`},
		{":80", "[::1]:80", `(":80" listens on every address)`},
		{"127.0.0.1:80", "[::1]:80", ""},
		{"127.0.0.1:80", "[::ffff:127.0.0.1]:80", "both listen on 127.0.0.1:80"},
		{"app.internal:80", "10.0.0.5:80", "both listen on 10.0.0.5:80"},
		{"app.internal:80", "10.0.0.6:80", ""},
		{"dual.internal:80", "127.0.0.1:80", "both listen on 127.0.0.1:80"},
		{"unknown.internal:80", "UNKNOWN.internal:80", "both listen on unknown.internal:80"},
		{"unknown.internal:80", "other.internal:80", ""},
		{"127.0.0.1:0", "127.0.0.1:0", ""},
		{"0.0.0.0:0", "127.0.0.1:0", ""},
	} {
		t.Run(tc.a+"_"+tc.b, func(t *testing.T) {
			dir := t.TempDir()
			// advertise_url: listen.http's port may be 0 here.
			const adv = "[drain]\nadvertise_url = \"http://127.0.0.1:1\"\n"
			a := hostFile(t, dir, "a.toml", strings.Replace(ports(0, 8081, 8082, filepath.Join(dir, "l1")), `"127.0.0.1:0"`, `"`+tc.a+`"`, 1)+adv)
			b := hostFile(t, dir, "b.toml", strings.Replace(ports(0, 9081, 9082, filepath.Join(dir, "l2")), `"127.0.0.1:0"`, `"`+tc.b+`"`, 1)+adv)
			cs := testHosts.Conflicts([]*Config{a, b})
			switch {
			case tc.want == "" && len(cs) != 0:
				t.Errorf("unexpected conflict:\n%s", conflictText(cs))
			case tc.want != "" && (len(cs) != 1 || !strings.Contains(cs[0].Msg, tc.want)):
				t.Errorf("conflicts:\n%s\nwant one with %q", conflictText(cs), tc.want)
			}
		})
	}
}

// Every listener of one file is compared with every listener of the other:
// a probe port that is the other pair's peer port is a conflict too, named
// with both keys, files and lines.
func TestHostConflictsAcrossKeys(t *testing.T) {
	dir := t.TempDir()
	a := hostFile(t, dir, "a.toml", ports(8080, 8081, 8082, filepath.Join(dir, "l1")))
	b := hostFile(t, dir, "b.toml", ports(9080, 9081, 9082, filepath.Join(dir, "l2"))+
		"[peer]\nlisten = \"0.0.0.0:8081\"\npeers = [\"10.0.0.2:8081\"]\nsecret_env = \"S\"\n")
	cs := testHosts.Conflicts([]*Config{a, b})
	if len(cs) != 1 {
		t.Fatalf("conflicts:\n%s", conflictText(cs))
	}
	want := filepath.Join(dir, "a.toml") + `:4: probe.listen = "127.0.0.1:8081" and ` +
		filepath.Join(dir, "b.toml") + `:12: peer.listen = "0.0.0.0:8081": both listen on port 8081 ("0.0.0.0:8081" listens on every address)`
	if got := cs[0].Error(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestHostConflictsFileLease(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "real"), 0o700)
	if err := os.Symlink(filepath.Join(dir, "real"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{filepath.Join(dir, "real", "lease"), filepath.Join(dir, "real", "lease"), true},
		{filepath.Join(dir, "real", "lease"), "real/lease", true},
		{filepath.Join(dir, "real", "lease"), filepath.Join(dir, "real", "..", "real", "lease"), true},
		{filepath.Join(dir, "real", "lease"), filepath.Join(dir, "link", "lease"), true},
		{filepath.Join(dir, "real", "lease"), filepath.Join(dir, "real", "lease2"), false},
	} {
		a := hostFile(t, dir, "a.toml", ports(8080, 8081, 8082, tc.a, "/tmp/s1"))
		b := hostFile(t, dir, "b.toml", ports(9080, 9081, 9082, tc.b, "/tmp/s2"))
		cs := testHosts.Conflicts([]*Config{a, b})
		if got := len(cs) == 1 && cs[0].A.Key == "lease.file.path" && cs[0].B.Key == "lease.file.path"; got != tc.same {
			t.Errorf("%s and %s: conflicts\n%s\nwant same lease: %v", tc.a, tc.b, conflictText(cs), tc.same)
		}
	}
}

func TestHostConflictsBlobLease(t *testing.T) {
	blob := func(lease string) string {
		return "[lease]\nstate_dir = \"/tmp/s\"\n[lease.azblob]\n" + lease
	}
	for _, tc := range []struct {
		name, a, b string
		same       bool
	}{
		{"same", "account_url = \"https://acct.blob.core.windows.net\"\n", "account_url = \"https://acct.blob.core.windows.net\"\n", true},
		{"spelled differently", "account_url = \"https://ACCT.blob.core.windows.net/\"\n", "account_url = \"https://acct.blob.core.windows.net:443\"\n", true},
		{"other account", "account_url = \"https://acct.blob.core.windows.net\"\n", "account_url = \"https://acct2.blob.core.windows.net\"\n", false},
		{"other blob", "account_url = \"https://acct.blob.core.windows.net\"\n", "account_url = \"https://acct.blob.core.windows.net\"\nblob = \"shop\"\n", false},
		{"other container", "account_url = \"https://acct.blob.core.windows.net\"\n", "account_url = \"https://acct.blob.core.windows.net\"\ncontainer = \"shop\"\n", false},
		{"azurite path style", "account_url = \"http://127.0.0.1:10000/devstoreaccount1\"\n", "account_url = \"http://127.0.0.1:10000/devstoreaccount2\"\n", false},
		{"connection string names the account", "account_url = \"https://acct.blob.core.windows.net\"\n",
			"auth = \"connection-string\"\nconnection_string_env = \"BATON_TEST_CS\"\n", true},
		{"unreadable connection strings from one source", "auth = \"connection-string\"\nconnection_string_env = \"OTHER\"\n",
			"auth = \"connection-string\"\nconnection_string_env = \"OTHER\"\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			a := hostFile(t, dir, "a.toml", strings.Replace(ports(8080, 8081, 8082, ""), "[lease]\nbackend = \"file\"\n[lease.file]\npath = \"\"\n", "", 1)+blob(tc.a))
			b := hostFile(t, dir, "b.toml", strings.Replace(ports(9080, 9081, 9082, ""), "[lease]\nbackend = \"file\"\n[lease.file]\npath = \"\"\n", "", 1)+blob(tc.b))
			b.NodeName = "other-node"
			cs := testHosts.Conflicts([]*Config{a, b})
			if got := len(cs) == 1 && cs[0].A.Key == "lease.azblob"; got != tc.same {
				t.Errorf("conflicts:\n%s\nwant same lease: %v", conflictText(cs), tc.same)
			}
			if strings.Contains(conflictText(cs), "c2VjcmV0") {
				t.Errorf("the account key is in the report:\n%s", conflictText(cs))
			}
		})
	}
}

// The instance lock is named after the node and the lease: two
// configurations may share lease.state_dir unless they are the same node
// competing for the same lease, which the lease rule reports anyway.
func TestHostConflictsInstanceLock(t *testing.T) {
	dir := t.TempDir()
	lease := filepath.Join(dir, "lease")
	state := filepath.Join(dir, "state")
	t.Run("same node, same lease, same folder", func(t *testing.T) {
		a := hostFile(t, dir, "a.toml", ports(8080, 8081, 8082, lease, state))
		b := hostFile(t, dir, "b.toml", ports(9080, 9081, 9082, lease, state))
		cs := testHosts.Conflicts([]*Config{a, b})
		if len(cs) != 2 || cs[0].A.Key != "lease.file.path" || cs[1].A.Key != "lease.state_dir" ||
			!strings.Contains(cs[0].Msg, `as the same node "test-host"`) || !strings.Contains(cs[1].Msg, "instance lock") {
			t.Errorf("conflicts:\n%s", conflictText(cs))
		}
		if cs[1].A.Line != 9 || cs[1].A.Default {
			t.Errorf("state_dir ref %+v, want line 9, written", cs[1].A)
		}
	})
	t.Run("two nodes, same lease", func(t *testing.T) {
		a := hostFile(t, dir, "a.toml", ports(8080, 8081, 8082, lease, state))
		b := hostFile(t, dir, "b.toml", "node_name = \"b\"\n"+ports(9080, 9081, 9082, lease, state))
		cs := testHosts.Conflicts([]*Config{a, b})
		if len(cs) != 1 || !strings.Contains(cs[0].Msg, "two nodes of one pair on one host") {
			t.Errorf("conflicts:\n%s", conflictText(cs))
		}
	})
	t.Run("same node, other leases, same folder", func(t *testing.T) {
		a := hostFile(t, dir, "a.toml", ports(8080, 8081, 8082, lease, state))
		b := hostFile(t, dir, "b.toml", ports(9080, 9081, 9082, lease+"2", state))
		if cs := testHosts.Conflicts([]*Config{a, b}); len(cs) != 0 {
			t.Errorf("conflicts:\n%s", conflictText(cs))
		}
	})
}

// Three files: every pair of them is compared, in order.
func TestHostConflictsThree(t *testing.T) {
	dir := t.TempDir()
	a := hostFile(t, dir, "a.toml", ports(8080, 8081, 8082, filepath.Join(dir, "l1")))
	b := hostFile(t, dir, "b.toml", ports(9080, 9081, 9082, filepath.Join(dir, "l2")))
	c := hostFile(t, dir, "c.toml", ports(7080, 9081, 8082, filepath.Join(dir, "l3")))
	cs := testHosts.Conflicts([]*Config{a, b, c})
	var got []string
	for _, x := range cs {
		got = append(got, filepath.Base(x.A.File)+":"+x.A.Key+"/"+filepath.Base(x.B.File)+":"+x.B.Key)
	}
	if want := "a.toml:admin.listen/c.toml:admin.listen b.toml:probe.listen/c.toml:probe.listen"; strings.Join(got, " ") != want {
		t.Errorf("got %v, want %s", got, want)
	}
}

func TestHostAccount(t *testing.T) {
	hc := &hostCheck{HostCheck: testHosts}
	for _, tc := range []struct {
		az   AzBlobLease
		want string
	}{
		{AzBlobLease{AccountURL: "https://Acct.Blob.Core.Windows.Net/"}, "https://acct.blob.core.windows.net"},
		{AzBlobLease{AccountURL: "https://acct.blob.core.windows.net:443"}, "https://acct.blob.core.windows.net"},
		{AzBlobLease{AccountURL: "http://127.0.0.1:10000/devstoreaccount1/"}, "http://127.0.0.1:10000/devstoreaccount1"},
		{AzBlobLease{ConnectionStringEnv: "BATON_TEST_CS"}, "https://acct.blob.core.windows.net"},
		{AzBlobLease{ConnectionStringEnv: "OTHER"}, "(the connection string in $OTHER)"},
	} {
		if got := hc.account(tc.az); got != tc.want {
			t.Errorf("account(%+v) = %q, want %q", tc.az, got, tc.want)
		}
	}
}
