package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	sockaddr "github.com/hashicorp/go-sockaddr"
)

func TestDefaults(t *testing.T) {
	got := mustLoad(t, fileLease)
	want := &Config{
		NodeName: "test-host",
		Listen:   Listen{HTTP: ":80"},
		Backend: Backend{
			URL:                   "http://127.0.0.1:8080",
			FencingHeader:         "Baton-Term",
			DialTimeout:           Duration(2 * time.Second),
			ResponseHeaderTimeout: Duration(60 * time.Second),
			MaxIdleConns:          256,
			FastPath:              ptr(true),
			UpgradeProtocols:      []string{"websocket"},
		},
		Probe: Probe{Listen: ":8081", Path: "/probe", Mode: "http", Allow: []string{}, LBInterval: Duration(5 * time.Second), LBThreshold: 1},
		Admin: Admin{Listen: "127.0.0.1:8082"},
		Lease: Lease{
			Backend:          "file",
			Duration:         Duration(15 * time.Second),
			RenewInterval:    Duration(3 * time.Second),
			RenewDeadline:    Duration(10 * time.Second),
			RetryInterval:    Duration(time.Second),
			CandidacyBackoff: Duration(10 * time.Second),
			ClockJump:        Duration(time.Second),
			File:             FileLease{Path: DefaultLeaseFile()},
			StateDir:         stateDir(""),
			AzBlob:           AzBlobLease{Container: "baton", Blob: "leader", Auth: "default", CallTimeout: Duration(2 * time.Second)},
		},
		Health: Health{
			Checks: []Check{{
				Name: "backend", Type: "http",
				Interval: Duration(2 * time.Second), Timeout: Duration(time.Second),
				Rise: 2, Fall: 2, Required: ptr(true),
				URL: "http://127.0.0.1:8080", Method: "GET",
				ExpectStatus: []StatusRange{{200, 399}},
				MaxBodyBytes: 64 << 10,
			}},
			Passive: Passive{Window: Duration(10 * time.Second), MinRequests: 20, Cooldown: Duration(30 * time.Second)},
			History: 10,
		},
		Drain: Drain{
			Timeout: Duration(30 * time.Second), Standby: "forward", Hold: Duration(5 * time.Second),
			AdvertiseURL: "http://10.1.2.3:80",
			ExitDelay:    Duration(6 * time.Second),
		},
		TLS: TLS{
			MinVersion:   "1.2",
			RedirectHTTP: ptr(false),
			ACME: ACME{
				Domains: []string{},
				CA:      "https://acme-v02.api.letsencrypt.org/directory", Storage: "file",
				StoragePath: DefaultACMEStorage(), StoragePrefix: "certmagic/",
				Challenges: []string{"http-01", "tls-alpn-01"},
			},
		},
		Log:   Log{Level: "info", Format: "json"},
		Hooks: Hooks{Timeout: Duration(30 * time.Second)},
		Peer:  Peer{Timeout: Duration(500 * time.Millisecond), Peers: []string{}},
		Azure: Azure{ScheduledEvents: ptr(false), IMDSURL: "http://169.254.169.254",
			StepDownOn: []string{"Freeze", "Reboot", "Redeploy", "Preempt", "Terminate"}},
		Limits: Limits{MaxConns: 10000, MaxBackendConns: 1024, BackendQueueTimeout: Duration(5 * time.Second),
			ClientTimeout: Duration(30 * time.Second), BufferBody: 64 << 10, HTTP2MaxStreams: 100},
		Runtime: Runtime{
			GCPercent: DefaultGCPercent, GCPercentFrom: OriginDefault,
			MemoryLimit: DefaultMemoryLimit, MemoryLimitBytes: mustSize(t, DefaultMemoryLimit), MemoryLimitFrom: OriginDefault,
		},
	}
	if d := diff(got, want); d != "" {
		t.Errorf("defaults differ: %s", d)
	}
}

func TestDefaultsDependOnOtherKeys(t *testing.T) {
	tests := []struct {
		name  string
		doc   string
		check func(t *testing.T, c *Config)
	}{
		{"exit delay from the load balancer probe", fileLease + "[probe]\nlb_interval = \"10s\"\nlb_threshold = 3\n",
			func(t *testing.T, c *Config) { eq(t, c.Drain.ExitDelay, Duration(31*time.Second)) }},
		{"explicit exit delay kept", fileLease + "[drain]\nexit_delay = \"0s\"\n",
			func(t *testing.T, c *Config) { eq(t, c.Drain.ExitDelay, Duration(0)) }},
		{"check url from backend.url", fileLease + "[backend]\nurl = \"http://10.0.0.9:9000/app\"\n",
			func(t *testing.T, c *Config) { eq(t, c.Health.Checks[0].URL, "http://10.0.0.9:9000/app") }},
		{"check timeout not above a short interval", fileLease + "[[health.check]]\nname = \"a\"\ninterval = \"300ms\"\n",
			func(t *testing.T, c *Config) { eq(t, c.Health.Checks[0].Timeout, Duration(300*time.Millisecond)) }},
		{"tcp check gets no http defaults", fileLease + "[[health.check]]\nname = \"a\"\ntype = \"tcp\"\naddress = \"127.0.0.1:1\"\n",
			func(t *testing.T, c *Config) {
				ch := c.Health.Checks[0]
				eq(t, ch.URL+ch.Method, "")
				eq(t, len(ch.ExpectStatus), 0)
			}},
		{"explicit empty fencing header disables it", fileLease + "[backend]\nfencing_header = \"\"\n",
			func(t *testing.T, c *Config) { eq(t, c.Backend.FencingHeader, "") }},
		{"empty node_name means the host name", "node_name = \"\"\n" + fileLease,
			func(t *testing.T, c *Config) { eq(t, c.NodeName, "test-host") }},
		{"redirect on with both listeners", fileLease + "[listen]\nhttps = \":443\"\n[[tls.certificate]]\ncert_file = \"testdata/files/test.crt\"\nkey_file = \"testdata/files/test.key\"\n",
			func(t *testing.T, c *Config) { eq(t, *c.TLS.RedirectHTTP, true) }},
		{"shared-key account from the endpoint", "[lease.azblob]\naccount_url = \"https://acct1.blob.core.windows.net\"\nauth = \"shared-key\"\naccount_key_env = \"K\"\n",
			func(t *testing.T, c *Config) { eq(t, c.Lease.AzBlob.AccountName, "acct1") }},
		{"shared-key account from the emulator path", "[lease.azblob]\naccount_url = \"http://127.0.0.1:10000/devstoreaccount1\"\nauth = \"shared-key\"\naccount_key_env = \"K\"\n",
			func(t *testing.T, c *Config) { eq(t, c.Lease.AzBlob.AccountName, "devstoreaccount1") }},
		{"probe allow-list normalised to prefixes", fileLease + "[probe]\nallow = [\"168.63.129.16\", \"fe80::1234:5678:9abc\", \"10.1.2.3/8\", \"::ffff:10.0.0.1\"]\n",
			func(t *testing.T, c *Config) {
				eq(t, strings.Join(c.Probe.Allow, " "), "168.63.129.16/32 fe80::1234:5678:9abc/128 10.0.0.0/8 10.0.0.1/32")
			}},
		{"ACME without listen.http: TLS-ALPN-01 only", "[listen]\nhttp = \"\"\nhttps = \":443\"\n[drain]\nstandby = \"reject\"\n" + fileLease + "[tls.acme]\ndomains = [\"a.example.com\"]\n",
			func(t *testing.T, c *Config) { eq(t, strings.Join(c.TLS.ACME.Challenges, " "), "tls-alpn-01") }},
		{"fast path off", fileLease + "[backend]\nfast_path = false\nresponse_header_timeout = \"0s\"\n",
			func(t *testing.T, c *Config) {
				eq(t, *c.Backend.FastPath, false)
				eq(t, c.Backend.ResponseHeaderTimeout.D(), 0)
			}},
		{"optional check", fileLease + "[[health.check]]\nname = \"a\"\nrequired = false\n",
			func(t *testing.T, c *Config) { eq(t, *c.Health.Checks[0].Required, false) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, mustLoad(t, tt.doc)) })
	}
}

func eq[T comparable](t *testing.T, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestHostnameFailure(t *testing.T) {
	l := testLoader()
	l.hostname = func() (string, error) { return "", errors.New("no name") }
	_, err := l.load([]byte(fileLease), "x.toml")
	es := Errors(err)
	if len(es) != 1 || es[0].Key != "node_name" || !strings.Contains(es[0].Msg, "set node_name") {
		t.Fatalf("got %v", err)
	}
	if _, err := l.load([]byte("node_name = \"n1\"\n"+fileLease), "x.toml"); err != nil {
		t.Fatalf("explicit node_name: %v", err)
	}
}

func TestAdvertiseURLDefault(t *testing.T) {
	tests := []struct {
		listen    string
		privateIP string
		ipErr     error
		want      string
	}{
		{":80", "10.1.2.3", nil, "http://10.1.2.3:80"},
		{"0.0.0.0:8080", "10.1.2.3", nil, "http://10.1.2.3:8080"},
		{"[::]:8080", "fd00::2", nil, "http://[fd00::2]:8080"},
		{":80", "", nil, "http://127.0.0.1:80"},
		{":80", "10.1.2.3", errors.New("no default route"), "http://127.0.0.1:80"},
		{"192.0.2.10:80", "10.1.2.3", nil, "http://192.0.2.10:80"},
		{"[2001:db8::1]:80", "10.1.2.3", nil, "http://[2001:db8::1]:80"},
	}
	for _, tt := range tests {
		t.Run(tt.listen+"/"+tt.privateIP, func(t *testing.T) {
			l := testLoader()
			l.privateIP = func() (string, error) { return tt.privateIP, tt.ipErr }
			c, err := l.load([]byte(fileLease+"[listen]\nhttp = \""+tt.listen+"\"\n"), "x.toml")
			if err != nil {
				t.Fatal(err)
			}
			eq(t, c.Drain.AdvertiseURL, tt.want)
		})
	}
	c := mustLoad(t, fileLease+"[drain]\nadvertise_url = \"http://node-a.internal:80\"\n")
	eq(t, c.Drain.AdvertiseURL, "http://node-a.internal:80")
}

func TestTemplates(t *testing.T) {
	l := testLoader()
	ip, _ := sockaddr.NewIPAddr("192.0.2.7/24")
	l.interfaces = func() (sockaddr.IfAddrs, error) {
		return sockaddr.IfAddrs{{SockAddr: ip, Interface: net.Interface{Index: 9, Name: "test0", Flags: net.FlagUp}}}, nil
	}
	doc := fileLease + `
[listen]
http = '{{ . | include "name" "test0" | attr "address" }}:80'
https = ''
[probe]
listen = '{{ "127.0.0.1" }}:8081'
[admin]
listen = '{{ GetAllInterfaces | include "flags" "loopback" | include "type" "IPv4" | attr "address" }}:8082'
[drain]
advertise_url = 'http://{{ . | attr "address" }}:80'
[[health.check]]
name = "t"
type = "tcp"
address = '{{ "127.0.0.1" }}:5432'
`
	c, err := l.load([]byte(doc), "x.toml")
	if err != nil {
		t.Fatal(err)
	}
	eq(t, c.Listen.HTTP, "192.0.2.7:80")
	eq(t, c.Probe.Listen, "127.0.0.1:8081")
	eq(t, c.Admin.Listen, "127.0.0.1:8082")
	eq(t, c.Drain.AdvertiseURL, "http://192.0.2.7:80")
	eq(t, c.Health.Checks[0].Address, "127.0.0.1:5432")

	// Errors name the key; an interface lookup failure is reported too.
	l.interfaces = func() (sockaddr.IfAddrs, error) { return nil, errors.New("netlink denied") }
	_, err = l.load([]byte(fileLease+"[probe]\nlisten = '{{ GetPrivateIP }}:8081'\n"), "x.toml")
	es := Errors(err)
	if len(es) != 1 || es[0].Key != "probe.listen" || !strings.Contains(es[0].Msg, "netlink denied") {
		t.Fatalf("got %v", err)
	}
}

func TestTemplateOutputLimit(t *testing.T) {
	_, err := load(t, fileLease+"[admin]\nlisten = '{{ printf \"%5000d\" 1 }}'\n")
	if es := Errors(err); len(es) != 1 || !strings.Contains(es[0].Msg, "longer than 4096") {
		t.Fatalf("got %v", err)
	}
}

func TestExampleFile(t *testing.T) {
	data, err := os.ReadFile("../baton.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := testLoader().load(data, "baton.example.toml")
	if err != nil {
		t.Fatalf("the shipped example does not load: %v", err)
	}
	// Its values are the defaults: it equals the shortest valid config.
	if runtime.GOOS != "windows" { // the example writes the Linux paths
		min := mustLoad(t, "[lease.azblob]\naccount_url = \"https://ACCOUNT.blob.core.windows.net\"\n")
		if d := diff(c, min); d != "" {
			t.Errorf("example differs from the defaults: %s", d)
		}
	}
	// Every key of the schema is shown, set or commented out.
	text := string(data)
	for table, names := range schemaKeys() {
		if table != "" && !strings.Contains(text, "["+table+"]") {
			t.Errorf("example has no [%s] table", table)
		}
		for _, n := range names {
			if _, isTable := schemaKeys()[joinKey(table, n)]; isTable {
				continue
			}
			if !regexp.MustCompile(`(?m)^#?\s*(` + regexp.QuoteMeta(n) + `\s*=|\[` + regexp.QuoteMeta(joinKey(table, n)) + `\])`).MatchString(text) {
				t.Errorf("example does not show %s", joinKey(table, n))
			}
		}
	}
}

func TestUnknownKeySuggestions(t *testing.T) {
	tests := []struct{ doc, key, msg string }{
		{"[lease]\nbackend = \"file\"\nDuration = \"20s\"\n", "lease.Duration", "did you mean lease.duration?"},
		{"[lease]\nbackend = \"file\"\nrenew_dedline = \"5s\"\n", "lease.renew_dedline", "did you mean lease.renew_deadline?"},
		{"lb_interval = \"5s\"\n" + fileLease, "lb_interval", "did you mean probe.lb_interval?"},
		{"path = \"/x\"\n" + fileLease, "path", "unknown key"}, // several tables have a path
		{fileLease + "[lease.file.extra]\nx = 1\n", "lease.file.extra", "unknown key"},
		{fileLease + "[[health.check]]\nname = \"a\"\n[health.check.headerz]\nX = \"y\"\n", "health.check[0].headerz", "did you mean health.check.headers?"},
	}
	for _, tt := range tests {
		_, err := load(t, tt.doc)
		es := Errors(err)
		if len(es) != 1 || es[0].Key != tt.key || !strings.Contains(es[0].Msg, tt.msg) || es[0].Line == 0 {
			t.Errorf("%q: got %v", tt.doc, err)
		}
		if tt.msg == "unknown key" && es[0].Msg != "unknown key" {
			t.Errorf("%q: unexpected suggestion %q", tt.doc, es[0].Msg)
		}
	}
}

func TestAllProblemsReportedAtOnce(t *testing.T) {
	_, err := load(t, `[lease]
backend = "azblob"
duration = "10s"
retry_interval = "0s"
[probe]
mode = "udp"
[log]
level = "loud"
[lease.azblob]
account_url = "https://a.blob.core.windows.net"
`)
	es := Errors(err)
	var keys []string
	for _, e := range es {
		keys = append(keys, fmt.Sprintf("%d:%s", e.Line, e.Key))
	}
	eq(t, strings.Join(keys, " "), "3:lease.duration 4:lease.retry_interval 6:probe.mode 8:log.level")
	if !strings.Contains(err.Error(), "test.toml:3: lease.duration: 10s is outside") {
		t.Errorf("joined message: %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/no-such-file.toml")
	var ce *Error
	if !errors.As(err, &ce) || ce.File != "testdata/no-such-file.toml" || !errors.Is(err, err) {
		t.Fatalf("got %#v", err)
	}
	if !strings.Contains(ce.Msg, "no such file") {
		t.Errorf("msg %q", ce.Msg)
	}
}

func TestLoadBytesLeavesPathEmpty(t *testing.T) {
	c, err := LoadBytes([]byte("node_name = \"n\"\n"+fileLease+"[listen]\nhttp = \"127.0.0.1:80\"\n"), "mem")
	if err != nil {
		t.Fatal(err)
	}
	eq(t, c.Path, "")
}

// diff names the first fields where a and b differ ("" if equal).
func diff(a, b any) string {
	var out []string
	var walk func(path string, x, y reflect.Value)
	walk = func(path string, x, y reflect.Value) {
		if len(out) > 5 {
			return
		}
		if x.Kind() == reflect.Pointer && !x.IsNil() && !y.IsNil() {
			walk(path, x.Elem(), y.Elem())
			return
		}
		if x.Kind() == reflect.Struct {
			for i := range x.NumField() {
				walk(path+"."+x.Type().Field(i).Name, x.Field(i), y.Field(i))
			}
			return
		}
		if x.Kind() == reflect.Slice && !x.IsNil() && !y.IsNil() && x.Len() == y.Len() {
			for i := range x.Len() {
				walk(fmt.Sprintf("%s[%d]", path, i), x.Index(i), y.Index(i))
			}
			return
		}
		if !reflect.DeepEqual(x.Interface(), y.Interface()) {
			out = append(out, fmt.Sprintf("%s: %#v != %#v", path, x.Interface(), y.Interface()))
		}
	}
	walk("", reflect.ValueOf(a), reflect.ValueOf(b))
	return strings.Join(out, "; ")
}

// On Windows the state defaults to the configuration file's folder
// (stateBaseFor); elsewhere to /var/lib/baton whatever the file's folder.
func TestStateFollowsTheConfigurationOnWindows(t *testing.T) {
	base := filepath.FromSlash("/data/shop")
	l := testLoader()
	l.stateBase = base
	c, err := l.load([]byte(fileLease), "shop.toml")
	if err != nil {
		t.Fatal(err)
	}
	eq(t, c.Lease.File.Path, filepath.Join(base, "lease"))
	eq(t, c.Lease.StateDir, base)
	eq(t, c.TLS.ACME.StoragePath, filepath.Join(base, "certmagic"))
	c, err = l.load([]byte(fileLease+"state_dir = '/state'\n[lease.file]\npath = '/elsewhere/lease'\n"), "shop.toml")
	if err != nil {
		t.Fatal(err)
	}
	eq(t, c.Lease.File.Path, "/elsewhere/lease") // written values stay
	eq(t, c.Lease.StateDir, "/state")

	want := ""
	if runtime.GOOS == "windows" {
		want = filepath.Join(os.TempDir(), "shop")
	}
	eq(t, stateBaseFor(filepath.Join(os.TempDir(), "shop", "shop.toml")), want)
}
