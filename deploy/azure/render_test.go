package azure

// Rendering the template as Azure would for a set of parameter values:
// every resource evaluated (copies expanded, conditions applied), and each
// VM's customData decoded into its cloud-init and the files it writes.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/batonproxy/baton/config"
)

// What reference() answers: Azure makes these up at deployment time.
const (
	stubClientID    = "5b1c3c9e-7d0a-4a57-9c1b-0c1e2d3f4a5b"
	stubPrincipalID = "0f6e5d4c-3b2a-4190-8877-665544332211"
	stubFQDN        = "baton-test.westeurope.cloudapp.azure.com"
	stubPublicIP    = "203.0.113.10"
)

// scenario is one set of parameter values the tests render.
type scenario struct {
	name   string
	params map[string]any
}

func baseParams() map[string]any {
	return map[string]any{
		// A SAS URL: & and % must survive the trip into a shell line.
		"batonDebUrl":       "https://pkgs.example.com/baton/baton_1.2.3-1_amd64.deb?sv=2024-05-04&sig=a%2Bb%3D",
		"adminSshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBatonTestKeyBatonTestKeyBatonTestKey0 test@example",
		"peerSecret":        "3e1f7a0c-5d2b-4c8e-9f10-2a3b4c5d6e7f",
		"adminToken":        "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
	}
}

func scenarios(t *testing.T) []scenario {
	own := baseParams()
	own["acmeEmail"] = "ops@example.com"
	own["sshSourceAddressPrefix"] = "203.0.113.0/24"
	own["appSetupScript"] = "#!/bin/sh\n# the app's own installer, with 'quotes', \"double quotes\", $VARS and a \\ backslash\nset -eu\napt-get install -y myapp\nsystemctl enable --now myapp\n"
	own["appHealthPath"] = "/healthz"
	own["demoAppUrl"] = "https://pkgs.example.com/demoapp"
	own["placement"] = "availabilitySet"
	own["storageSku"] = "Standard_LRS"
	own["namePrefix"] = "shop-prod"

	// The example parameter file, with the secrets it leaves to newGuid().
	var file struct {
		Parameters map[string]struct {
			Value any `json:"value"`
		} `json:"parameters"`
	}
	raw, err := os.ReadFile("azuredeploy.parameters.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatalf("azuredeploy.parameters.json: %v", err)
	}
	example := map[string]any{}
	for k, v := range file.Parameters {
		example[k] = normalize(v.Value)
	}
	return []scenario{
		{"defaults", baseParams()},
		{"https-ssh-own-app-avset", own},
		{"example-parameters-file", example},
	}
}

func loadTemplate(t *testing.T) map[string]any {
	t.Helper()
	raw, err := os.ReadFile("azuredeploy.json")
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("azuredeploy.json: %v", err)
	}
	return normalize(v).(map[string]any)
}

// newEnv is the template with these parameters and the reference() stubs.
func newEnv(t *testing.T, params map[string]any) *armEnv {
	t.Helper()
	refs := map[string]map[string]any{}
	e, err := newArmEnv(loadTemplate(t), params, refs)
	if err != nil {
		t.Fatal(err)
	}
	refs[strings.ToLower(mustString(t, e, "[variables('identityId')]"))] = map[string]any{
		"clientId": stubClientID, "principalId": stubPrincipalID}
	refs[strings.ToLower(mustString(t, e, "[variables('pipId')]"))] = map[string]any{
		"dnsSettings": map[string]any{"fqdn": stubFQDN}, "ipAddress": stubPublicIP}
	return e
}

func mustEval(t *testing.T, e *armEnv, v any) any {
	t.Helper()
	out, err := e.eval(v)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustString(t *testing.T, e *armEnv, expr string) string {
	t.Helper()
	s, ok := mustEval(t, e, expr).(string)
	if !ok {
		t.Fatalf("%s is not a string", expr)
	}
	return s
}

// resources evaluates every resource Azure would deploy: copies expanded,
// those whose condition is false left out.
func resources(t *testing.T, e *armEnv) []map[string]any {
	t.Helper()
	var out []map[string]any
	for i, r := range e.tmpl["resources"].([]any) {
		r := obj(r)
		n := 1
		if c, ok := r["copy"]; ok {
			n = toInt(obj(c)["count"])
		}
		for ix := range n {
			env := e
			if _, ok := r["copy"]; ok {
				env = e.withCopy(ix)
			}
			v, err := env.eval(r)
			if err != nil {
				t.Fatalf("resource %d (%v): %v", i, r["type"], err)
			}
			m := v.(map[string]any)
			if c, ok := m["condition"]; ok && c != true {
				continue
			}
			out = append(out, m)
		}
	}
	return out
}

func byType(rs []map[string]any, typ string) []map[string]any {
	var out []map[string]any
	for _, r := range rs {
		if strings.EqualFold(r["type"].(string), typ) {
			out = append(out, r)
		}
	}
	return out
}

func one(t *testing.T, rs []map[string]any, typ string) map[string]any {
	t.Helper()
	found := byType(rs, typ)
	if len(found) != 1 {
		t.Fatalf("%d resources of type %s, want 1", len(found), typ)
	}
	return found[0]
}

// path walks nested objects and arrays: path(v, "properties", "probes", 0).
func path(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			v = obj(v)[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

// writeFile is one entry of cloud-init's write_files.
type writeFile struct {
	path, owner, permissions, encoding string
	content                            []byte // decoded
}

// node is one VM as rendered: its cloud-init and what that writes.
type node struct {
	name, ip  string
	customB64 string
	cloudInit string
	files     map[string]writeFile
}

func renderNodes(t *testing.T, e *armEnv) []node {
	t.Helper()
	var out []node
	for _, vm := range byType(resources(t, e), "Microsoft.Compute/virtualMachines") {
		cd, _ := path(vm, "properties", "osProfile", "customData").(string)
		raw, err := base64.StdEncoding.DecodeString(cd)
		if err != nil {
			t.Fatalf("customData of %v: %v", vm["name"], err)
		}
		n := node{name: vm["name"].(string), customB64: cd, cloudInit: string(raw)}
		n.files = parseWriteFiles(t, n.cloudInit)
		out = append(out, n)
	}
	ips := mustEval(t, e, "[parameters('nodeIps')]").([]any)
	if len(out) != 2 || len(ips) != 2 {
		t.Fatalf("%d VMs and %d node addresses, want 2 of each", len(out), len(ips))
	}
	for i := range out {
		out[i].ip = ips[i].(string)
	}
	return out
}

var (
	itemRe  = regexp.MustCompile(`^  - path: (\S+)$`)
	fieldRe = regexp.MustCompile(`^    (\w+): ?(.*)$`)
)

// parseWriteFiles reads write_files in the layout of cloud-init.yaml (a
// YAML subset: "  - path:" items, "    key: value" fields, quoted scalars
// and "|" blocks). TestCloudInitSchema checks it against a real YAML
// parser where one is installed.
func parseWriteFiles(t *testing.T, text string) map[string]writeFile {
	t.Helper()
	files := map[string]writeFile{}
	lines := strings.Split(text, "\n")
	in := false
	var cur *writeFile
	flush := func() {
		if cur == nil {
			return
		}
		if cur.encoding == "b64" {
			b, err := base64.StdEncoding.DecodeString(string(cur.content))
			if err != nil {
				t.Fatalf("write_files %s: %v", cur.path, err)
			}
			cur.content = b
		}
		files[cur.path] = *cur
		cur = nil
	}
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case l == "write_files:":
			in = true
			continue
		case !in || strings.HasPrefix(strings.TrimSpace(l), "#"):
			continue
		case l != "" && l[0] != ' ': // the next top-level key
			flush()
			in = false
			continue
		}
		if m := itemRe.FindStringSubmatch(l); m != nil {
			flush()
			cur = &writeFile{path: m[1]}
			continue
		}
		m := fieldRe.FindStringSubmatch(l)
		if m == nil || cur == nil {
			t.Fatalf("cloud-init line %d not understood: %q", i+1, l)
		}
		val := m[2]
		if strings.HasPrefix(val, `"`) {
			u, err := strconv.Unquote(val)
			if err != nil {
				t.Fatalf("cloud-init line %d: %v", i+1, err)
			}
			val = u
		}
		switch m[1] {
		case "owner":
			cur.owner = val
		case "permissions":
			cur.permissions = val
		case "encoding":
			cur.encoding = val
		case "content":
			if val != "|" {
				cur.content = []byte(val)
				continue
			}
			var b bytes.Buffer
			for i+1 < len(lines) && (lines[i+1] == "" || strings.HasPrefix(lines[i+1], "      ")) {
				i++
				b.WriteString(strings.TrimPrefix(lines[i], "      ") + "\n")
			}
			cur.content = bytes.TrimRight(b.Bytes(), "\n")
			cur.content = append(cur.content, '\n')
		default:
			t.Fatalf("cloud-init line %d: unknown field %q", i+1, m[1])
		}
	}
	flush()
	return files
}

const stage = "/var/lib/baton-deploy/"

// installLine matches the deploy script's lines that put a staged file in
// place: install -m MODE -o OWNER -g GROUP "$D/NAME" TARGET.
var installLine = regexp.MustCompile(`(?m)^install -m (\d+) -o (\w+) -g (\w+) "\$D/([\w.-]+)" (\S+)$`)

// installs maps each staged file's name to where the deploy script puts it.
func (n node) installs(t *testing.T) map[string]string {
	t.Helper()
	script, ok := n.files["/usr/local/sbin/baton-deploy"]
	if !ok {
		t.Fatal("cloud-init writes no /usr/local/sbin/baton-deploy")
	}
	out := map[string]string{}
	for _, m := range installLine.FindAllStringSubmatch(string(script.content), -1) {
		if m[1] != "0640" || m[2] != "root" || m[3] != "baton" {
			t.Errorf("%s is installed as %s %s:%s, want 0640 root:baton", m[5], m[1], m[2], m[3])
		}
		out[m[4]] = m[5]
	}
	return out
}

// batonConfig puts the node's configuration and the files it names under a
// temporary root, as the deploy script would on the VM, and loads it. It
// returns the configuration and the file's path. A file that the
// configuration names under /etc/baton but the deployment does not write
// makes the load fail, as it would on the VM.
func (n node) batonConfig(t *testing.T) (*config.Config, string) {
	t.Helper()
	root := t.TempDir()
	inst := n.installs(t)
	if inst["baton.toml"] != "/etc/baton/baton.toml" {
		t.Fatalf("the deploy script puts baton.toml at %q", inst["baton.toml"])
	}
	for name, target := range inst {
		f, ok := n.files[stage+name]
		if !ok {
			t.Fatalf("the deploy script installs %s, which cloud-init does not write", stage+name)
		}
		if f.permissions != "0600" || f.owner != "root:root" {
			t.Errorf("%s is staged as %s %s, want 0600 root:root", f.path, f.permissions, f.owner)
		}
		content := f.content
		if name == "baton.toml" {
			content = bytes.ReplaceAll(content, []byte(`"/etc/baton/`), []byte(`"`+root+`/etc/baton/`))
		}
		dst := filepath.Join(root, target)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(root, "etc/baton/baton.toml")
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatalf("%s's baton.toml: %v\n%s", n.name, err, n.files[stage+"baton.toml"].content)
	}
	return cfg, p
}

// port is the port of a listen address such as ":8081" or "10.0.1.4:8083".
func port(t *testing.T, addr string) int {
	t.Helper()
	i := strings.LastIndexByte(addr, ':')
	p, err := strconv.Atoi(addr[i+1:])
	if i < 0 || err != nil {
		t.Fatalf("no port in %q", addr)
	}
	return p
}

func describe(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return fmt.Sprint(string(b))
}
