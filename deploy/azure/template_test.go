package azure

import (
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/batonproxy/baton/deploy/internal/deploytest"
)

var update = flag.Bool("update", false, "copy cloud-init.yaml, baton.toml and tls-acme.toml into azuredeploy.json's variables")

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	deploytest.Cleanup()
	os.Exit(code)
}

// embedded are the template's variables that copy a file beside it: the
// files are what people read and edit, the template is what Azure gets.
var embedded = []struct{ variable, file string }{
	{"cloudInit", "cloud-init.yaml"},
	{"batonToml", "baton.toml"},
	{"tlsAcmeToml", "tls-acme.toml"},
}

func TestEmbeddedFiles(t *testing.T) {
	raw, err := os.ReadFile("azuredeploy.json")
	if err != nil {
		t.Fatal(err)
	}
	vars := obj(loadTemplate(t)["variables"])
	text := string(raw)
	for _, em := range embedded {
		want, err := os.ReadFile(em.file)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(string(want), "[") {
			t.Errorf("%s starts with '[': ARM would take it for an expression", em.file)
		}
		if vars[em.variable] == string(want) {
			continue
		}
		if !*update {
			t.Errorf("variable %s of azuredeploy.json is not a copy of %s: run go test ./deploy/azure -run TestEmbeddedFiles -update", em.variable, em.file)
			continue
		}
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(string(want)); err != nil {
			t.Fatal(err)
		}
		re := regexp.MustCompile(`(?m)^(\s*"` + em.variable + `": )"(?:[^"\\]|\\.)*"(,?)$`)
		if len(re.FindAllString(text, -1)) != 1 {
			t.Fatalf("azuredeploy.json: no single line for variable %s", em.variable)
		}
		text = re.ReplaceAllStringFunc(text, func(line string) string {
			m := re.FindStringSubmatch(line)
			return m[1] + strings.TrimSpace(b.String()) + m[2]
		})
	}
	if *update {
		if err := os.WriteFile("azuredeploy.json", []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTemplateEvaluates renders every resource and output for each
// scenario with the evaluator (which knows only the functions listed in
// arm_test.go), and checks that every parameter and variable is used.
func TestTemplateEvaluates(t *testing.T) {
	tmpl := loadTemplate(t)
	raw, err := os.ReadFile("azuredeploy.json")
	if err != nil {
		t.Fatal(err)
	}
	for k := range obj(tmpl["parameters"]) {
		if !strings.Contains(string(raw), "parameters('"+k+"')") {
			t.Errorf("parameter %s is never used", k)
		}
	}
	for k := range obj(tmpl["variables"]) {
		if !strings.Contains(string(raw), "variables('"+k+"')") {
			t.Errorf("variable %s is never used", k)
		}
	}
	for _, sc := range scenarios(t) {
		t.Run(sc.name, func(t *testing.T) {
			e := newEnv(t, sc.params)
			rs := resources(t, e)
			for _, r := range rs {
				if r["apiVersion"] == nil || r["name"] == nil {
					t.Errorf("resource %v lacks apiVersion or name", r["type"])
				}
			}
			outs := mustEval(t, e, tmpl["outputs"]).(map[string]any)
			if got := path(outs, "frontendUrl", "value"); got != "http://"+stubFQDN+"/" && got != "https://"+stubFQDN+"/" {
				t.Errorf("frontendUrl = %v", got)
			}
			for _, k := range []string{"checkNodeA", "checkNodeB"} {
				v, _ := path(outs, k, "value").(string)
				if !strings.HasPrefix(v, "az vm run-command invoke -g "+testGroup+" -n ") || !strings.Contains(v, "baton status") {
					t.Errorf("%s = %q", k, v)
				}
			}
			for _, n := range renderNodes(t, e) {
				if len(n.customB64) > 65535 {
					t.Errorf("%s: customData is %d bytes of base64, Azure takes at most 65535", n.name, len(n.customB64))
				}
			}
			t.Logf("resources: %d; functions used: %v", len(rs), slices.Sorted(func(yield func(string) bool) {
				for k := range e.used {
					if !yield(k) {
						return
					}
				}
			}))
		})
	}
}

// TestLoadBalancerMatchesBatonConfig: the probe is baton's probe (port,
// path, interval, threshold, so check-config's timing contract is the load
// balancer's), and the rules send 80 and 443 to the ports baton listens on.
func TestLoadBalancerMatchesBatonConfig(t *testing.T) {
	for _, sc := range scenarios(t) {
		t.Run(sc.name, func(t *testing.T) {
			e := newEnv(t, sc.params)
			rs := resources(t, e)
			lb := one(t, rs, "Microsoft.Network/loadBalancers")
			lbName := lb["name"].(string)
			if path(lb, "sku", "name") != "Standard" {
				t.Errorf("load balancer sku %v, want Standard", path(lb, "sku", "name"))
			}
			probes := path(lb, "properties", "probes").([]any)
			if len(probes) != 1 {
				t.Fatalf("%d probes, want 1", len(probes))
			}
			pr := obj(probes[0])
			pp := obj(pr["properties"])
			probeID := mustString(t, e, "[resourceId('Microsoft.Network/loadBalancers/probes', '"+lbName+"', '"+pr["name"].(string)+"')]")
			poolID := mustString(t, e, "[resourceId('Microsoft.Network/loadBalancers/backendAddressPools', '"+lbName+"', '"+path(lb, "properties", "backendAddressPools", 0, "name").(string)+"')]")
			feID := mustString(t, e, "[resourceId('Microsoft.Network/loadBalancers/frontendIPConfigurations', '"+lbName+"', '"+path(lb, "properties", "frontendIPConfigurations", 0, "name").(string)+"')]")
			if pp["noHealthyBackendsBehavior"] != "AllProbedUp" {
				t.Errorf("noHealthyBackendsBehavior = %v, want AllProbedUp (README: Deploy on Azure)", pp["noHealthyBackendsBehavior"])
			}
			if v, _ := lb["apiVersion"].(string); v < "2024-01-01" {
				t.Errorf("load balancer apiVersion %s: noHealthyBackendsBehavior needs 2024-01-01 or later", v)
			}
			rules := map[int]int{} // frontend port -> backend port
			for _, r := range path(lb, "properties", "loadBalancingRules").([]any) {
				p := obj(obj(r)["properties"])
				if path(p, "probe", "id") != probeID || path(p, "backendAddressPool", "id") != poolID || path(p, "frontendIPConfiguration", "id") != feID {
					t.Errorf("rule %v does not use the load balancer's own probe, pool and frontend:\n%s", obj(r)["name"], describe(p))
				}
				if p["protocol"] != "Tcp" || p["disableOutboundSnat"] != true {
					t.Errorf("rule %v: protocol %v, disableOutboundSnat %v", obj(r)["name"], p["protocol"], p["disableOutboundSnat"])
				}
				rules[p["frontendPort"].(int)] = p["backendPort"].(int)
			}
			if len(rules) != 2 || rules[80] != 80 || rules[443] != 443 {
				t.Errorf("rules (frontend: backend port) %v, want 80: 80 and 443: 443", rules)
			}
			acme := mustEval(t, e, "[variables('acmeEnabled')]").(bool)
			for _, n := range renderNodes(t, e) {
				cfg, _ := n.batonConfig(t)
				if pp["protocol"] != "Http" || pp["port"] != port(t, cfg.Probe.Listen) || pp["requestPath"] != cfg.Probe.Path || cfg.Probe.Mode != "http" {
					t.Errorf("%s: probe %v port %v path %v; baton's probe %s %s%s", n.name, pp["protocol"], pp["port"], pp["requestPath"], cfg.Probe.Mode, cfg.Probe.Listen, cfg.Probe.Path)
				}
				if time.Duration(pp["intervalInSeconds"].(int))*time.Second != time.Duration(cfg.Probe.LBInterval) {
					t.Errorf("%s: probe interval %vs, baton's probe.lb_interval %s", n.name, pp["intervalInSeconds"], cfg.Probe.LBInterval)
				}
				if pp["probeThreshold"] != cfg.Probe.LBThreshold || pp["numberOfProbes"] != cfg.Probe.LBThreshold {
					t.Errorf("%s: probeThreshold %v, numberOfProbes %v; baton's probe.lb_threshold %d", n.name, pp["probeThreshold"], pp["numberOfProbes"], cfg.Probe.LBThreshold)
				}
				if !slices.Contains(cfg.Probe.Allow, "168.63.129.16") && !slices.Contains(cfg.Probe.Allow, "168.63.129.16/32") {
					t.Errorf("%s: probe.allow %v lacks Azure's prober 168.63.129.16", n.name, cfg.Probe.Allow)
				}
				if rules[80] != port(t, cfg.Listen.HTTP) {
					t.Errorf("%s: rule 80 goes to %d, baton listens on %s", n.name, rules[80], cfg.Listen.HTTP)
				}
				// Without ACME nothing listens on 443 (the rule is there for
				// when HTTPS is turned on; a client gets a refused connection).
				if acme != (cfg.Listen.HTTPS != "") || acme && rules[443] != port(t, cfg.Listen.HTTPS) {
					t.Errorf("%s: acme %v, listen.https %q, rule 443 to %d", n.name, acme, cfg.Listen.HTTPS, rules[443])
				}
				if acme && (!slices.Equal(cfg.TLS.ACME.Domains, []string{stubFQDN}) || cfg.TLS.ACME.Storage != "azblob") {
					t.Errorf("%s: ACME domains %v storage %q, want the load balancer's name and the shared storage", n.name, cfg.TLS.ACME.Domains, cfg.TLS.ACME.Storage)
				}
			}
			// Each VM's NIC is in the pool, with the node's static address.
			nics := byType(rs, "Microsoft.Network/networkInterfaces")
			ips := mustEval(t, e, "[parameters('nodeIps')]").([]any)
			if len(nics) != 2 {
				t.Fatalf("%d NICs", len(nics))
			}
			for i, nic := range nics {
				ipc := path(nic, "properties", "ipConfigurations", 0, "properties")
				if path(ipc, "privateIPAllocationMethod") != "Static" || path(ipc, "privateIPAddress") != ips[i] || path(ipc, "loadBalancerBackendAddressPools", 0, "id") != poolID {
					t.Errorf("NIC %v:\n%s", nic["name"], describe(ipc))
				}
			}
		})
	}
}

// TestIdentityReachesTheConfig: the role is Storage Blob Data Contributor
// on the lease's container only, for the identity the VMs carry, whose
// client ID is in each node's baton.toml.
func TestIdentityReachesTheConfig(t *testing.T) {
	for _, sc := range scenarios(t) {
		t.Run(sc.name, func(t *testing.T) {
			e := newEnv(t, sc.params)
			rs := resources(t, e)
			identityID := mustString(t, e, "[variables('identityId')]")
			ra := one(t, rs, "Microsoft.Authorization/roleAssignments")
			sa := one(t, rs, "Microsoft.Storage/storageAccounts")
			ct := one(t, rs, "Microsoft.Storage/storageAccounts/blobServices/containers")
			acct := sa["name"].(string)
			if ok, _ := regexp.MatchString(`^[a-z0-9]{3,24}$`, acct); !ok {
				t.Errorf("storage account name %q is not 3-24 lowercase letters and digits", acct)
			}
			sp := obj(sa["properties"])
			if sa["kind"] != "StorageV2" || sp["minimumTlsVersion"] != "TLS1_2" || sp["allowBlobPublicAccess"] != false || sp["supportsHttpsTrafficOnly"] != true {
				t.Errorf("storage account:\n%s", describe(sa))
			}
			if path(ct, "properties", "publicAccess") != "None" {
				t.Errorf("container public access %v", path(ct, "properties", "publicAccess"))
			}
			for _, n := range renderNodes(t, e) {
				cfg, _ := n.batonConfig(t)
				az := cfg.Lease.AzBlob
				wantScope := "Microsoft.Storage/storageAccounts/" + acct + "/blobServices/default/containers/" + az.Container
				if ra["scope"] != wantScope {
					t.Errorf("role assignment scope %v, want the lease's container %s", ra["scope"], wantScope)
				}
				if ct["name"] != acct+"/default/"+az.Container {
					t.Errorf("container %v, baton's lease is in %s/%s", ct["name"], acct, az.Container)
				}
				if az.AccountURL != "https://"+acct+".blob.core.windows.net" {
					t.Errorf("%s: account_url %s, the account is %s", n.name, az.AccountURL, acct)
				}
				if az.Auth != "managed-identity" || az.ClientID != stubClientID {
					t.Errorf("%s: auth %q client_id %q, want managed-identity with the identity's client ID %s", n.name, az.Auth, az.ClientID, stubClientID)
				}
				if cfg.Lease.Backend != "azblob" {
					t.Errorf("%s: lease.backend %q", n.name, cfg.Lease.Backend)
				}
			}
			rp := obj(ra["properties"])
			if rp["roleDefinitionId"] != "/subscriptions/"+testSubscription+"/providers/Microsoft.Authorization/roleDefinitions/ba92f5b4-2d11-453d-a403-e96b0029c9fe" {
				t.Errorf("role %v, want Storage Blob Data Contributor", rp["roleDefinitionId"])
			}
			if rp["principalId"] != stubPrincipalID || rp["principalType"] != "ServicePrincipal" {
				t.Errorf("role assignment principal %v (%v), want the identity's %s", rp["principalId"], rp["principalType"], stubPrincipalID)
			}
			for _, vm := range byType(rs, "Microsoft.Compute/virtualMachines") {
				ids := obj(path(vm, "identity", "userAssignedIdentities"))
				if path(vm, "identity", "type") != "UserAssigned" || len(ids) != 1 || ids[identityID] == nil {
					t.Errorf("VM %v identity:\n%s\nwant only %s", vm["name"], describe(vm["identity"]), identityID)
				}
				// The VM starts after the role assignment exists.
				raID := mustString(t, e, "[extensionResourceId(variables('containerId'), 'Microsoft.Authorization/roleAssignments', '"+ra["name"].(string)+"')]")
				if !slices.Contains(vm["dependsOn"].([]any), any(raID)) {
					t.Errorf("VM %v does not depend on the role assignment %s", vm["name"], raID)
				}
			}
		})
	}
}

// TestPeerLink: each node's peer is the other node, with the same secret,
// and failsafe is on because peers names every other node.
func TestPeerLink(t *testing.T) {
	for _, sc := range scenarios(t) {
		t.Run(sc.name, func(t *testing.T) {
			e := newEnv(t, sc.params)
			nodes := renderNodes(t, e)
			secret := mustString(t, e, "[parameters('peerSecret')]")
			token := mustString(t, e, "[parameters('adminToken')]")
			for i, n := range nodes {
				other := nodes[1-i]
				cfg, _ := n.batonConfig(t)
				if cfg.NodeName != n.name || cfg.Peer.Listen != n.ip+":8083" || !slices.Equal(cfg.Peer.Peers, []string{other.ip + ":8083"}) {
					t.Errorf("%s: node_name %q, peer.listen %q, peers %v; want %s, %s:8083, [%s:8083]", n.name, cfg.NodeName, cfg.Peer.Listen, cfg.Peer.Peers, n.name, n.ip, other.ip)
				}
				if cfg.Drain.AdvertiseURL != "http://"+n.ip+":80" {
					t.Errorf("%s: drain.advertise_url %q", n.name, cfg.Drain.AdvertiseURL)
				}
				if !cfg.Lease.Failsafe {
					t.Errorf("%s: lease.failsafe is off", n.name)
				}
				if got := string(n.files[stage+"peer-secret"].content); got != secret {
					t.Errorf("%s: peer secret %q, want the peerSecret parameter", n.name, got)
				}
				if got := string(n.files[stage+"admin-token"].content); got != token {
					t.Errorf("%s: admin token %q, want the adminToken parameter", n.name, got)
				}
				if cfg.Admin.TokenFile == "" || !strings.HasPrefix(cfg.Admin.Listen, "127.0.0.1:") {
					t.Errorf("%s: admin listen %q token_file %q", n.name, cfg.Admin.Listen, cfg.Admin.TokenFile)
				}
			}
		})
	}
}

// TestNSGAdmitsExactly simulates the subnet's network security group, with
// Azure's default rules after it: 80 and 443 from anywhere, the probe port
// from the load balancer only, the peer port from the other node only, SSH
// only from sshSourceAddressPrefix when it is set, nothing else.
func TestNSGAdmitsExactly(t *testing.T) {
	type source struct {
		name string
		addr netip.Addr
		tags []string
	}
	for _, sc := range scenarios(t) {
		t.Run(sc.name, func(t *testing.T) {
			e := newEnv(t, sc.params)
			rs := resources(t, e)
			nsg := one(t, rs, "Microsoft.Network/networkSecurityGroups")
			vnet := one(t, rs, "Microsoft.Network/virtualNetworks")
			subnet := path(vnet, "properties", "subnets", 0, "properties")
			nsgID := mustString(t, e, "[resourceId('Microsoft.Network/networkSecurityGroups', variables('nsgName'))]")
			if path(subnet, "networkSecurityGroup", "id") != nsgID {
				t.Fatalf("the subnet's NSG is %v, want %s", path(subnet, "networkSecurityGroup", "id"), nsgID)
			}
			for _, nic := range byType(rs, "Microsoft.Network/networkInterfaces") {
				if path(nic, "properties", "networkSecurityGroup") != nil {
					t.Errorf("NIC %v has an NSG of its own", nic["name"])
				}
			}
			subnetPfx := netip.MustParsePrefix(subnet.(map[string]any)["addressPrefix"].(string))
			vnetPfx := netip.MustParsePrefix(path(vnet, "properties", "addressSpace", "addressPrefixes", 0).(string))
			nodes := renderNodes(t, e)
			for _, n := range nodes {
				if !subnetPfx.Contains(netip.MustParseAddr(n.ip)) {
					t.Errorf("node %s's address %s is outside the subnet %s", n.name, n.ip, subnetPfx)
				}
			}
			ssh := mustString(t, e, "[parameters('sshSourceAddressPrefix')]")
			sources := []source{
				{"internet", netip.MustParseAddr("198.51.100.7"), []string{"Internet"}},
				{"azure-lb", netip.MustParseAddr("168.63.129.16"), []string{"AzureLoadBalancer"}},
				{"peer-node", netip.MustParseAddr(nodes[1].ip), []string{"VirtualNetwork"}},
				{"other-subnet", netip.MustParseAddr("10.0.2.9"), []string{"VirtualNetwork"}},
				{"ssh-admin", netip.MustParseAddr("203.0.113.5"), []string{"Internet"}},
			}
			want := map[string]bool{}
			for _, s := range sources {
				want[s.name+":80"], want[s.name+":443"] = true, true
			}
			want["azure-lb:8081"], want["peer-node:8083"] = true, true
			if ssh != "" {
				want["ssh-admin:22"] = true
			}
			rules := path(nsg, "properties", "securityRules").([]any)
			// Azure's default inbound rules, after every custom one.
			rules = append(rules,
				map[string]any{"name": "AllowVnetInBound", "properties": map[string]any{"priority": 65000, "direction": "Inbound", "access": "Allow", "protocol": "*", "sourceAddressPrefix": "VirtualNetwork", "destinationAddressPrefix": "VirtualNetwork", "destinationPortRange": "*"}},
				map[string]any{"name": "AllowAzureLoadBalancerInBound", "properties": map[string]any{"priority": 65001, "direction": "Inbound", "access": "Allow", "protocol": "*", "sourceAddressPrefix": "AzureLoadBalancer", "destinationAddressPrefix": "*", "destinationPortRange": "*"}},
				map[string]any{"name": "DenyAllInBound", "properties": map[string]any{"priority": 65500, "direction": "Inbound", "access": "Deny", "protocol": "*", "sourceAddressPrefix": "*", "destinationAddressPrefix": "*", "destinationPortRange": "*"}},
			)
			slices.SortStableFunc(rules, func(a, b any) int {
				return path(a, "properties", "priority").(int) - path(b, "properties", "priority").(int)
			})
			matchAddr := func(prefix string, addr netip.Addr, tags []string) bool {
				switch {
				case prefix == "*" || slices.Contains(tags, prefix):
					return true
				case prefix == "VirtualNetwork":
					return vnetPfx.Contains(addr) // the destination side
				case strings.Contains(prefix, "/"):
					return netip.MustParsePrefix(prefix).Contains(addr)
				}
				a, err := netip.ParseAddr(prefix)
				return err == nil && a == addr
			}
			matchPort := func(p map[string]any, port int) bool {
				ranges := []any{p["destinationPortRange"]}
				if rs, ok := p["destinationPortRanges"].([]any); ok {
					ranges = rs
				}
				for _, r := range ranges {
					r, _ := r.(string)
					lo, hi, isRange := strings.Cut(r, "-")
					a, _ := strconv.Atoi(lo)
					b := a
					if isRange {
						b, _ = strconv.Atoi(hi)
					}
					if r == "*" || port >= a && port <= b {
						return true
					}
				}
				return false
			}
			for _, dst := range nodes {
				for _, s := range sources {
					for _, p := range []int{22, 80, 443, 8080, 8081, 8082, 8083, 9090} {
						if s.addr.String() == dst.ip {
							continue
						}
						decided := ""
						for _, r := range rules {
							rp := obj(obj(r)["properties"])
							if rp["direction"] != "Inbound" || rp["protocol"] != "Tcp" && rp["protocol"] != "*" {
								continue
							}
							if matchAddr(rp["sourceAddressPrefix"].(string), s.addr, s.tags) &&
								matchAddr(rp["destinationAddressPrefix"].(string), netip.MustParseAddr(dst.ip), []string{"VirtualNetwork"}) &&
								matchPort(rp, p) {
								decided = rp["access"].(string) + " by " + obj(r)["name"].(string)
								break
							}
						}
						key := s.name + ":" + strconv.Itoa(p)
						if strings.HasPrefix(decided, "Allow") != want[key] {
							t.Errorf("%s to %s port %d: %s, want allowed=%v", s.name, dst.name, p, decided, want[key])
						}
					}
				}
			}
		})
	}
}

// TestCloudInitSchema validates each VM's cloud-init with cloud-init's own
// schema (Debian 12's cloud-init, as on the VMs), checks this test's
// reading of write_files against a real YAML parser, and the shell scripts
// it writes with sh -n.
func TestCloudInitSchema(t *testing.T) {
	ci := deploytest.Tool(t, "cloud-init", "scripts/install-cloud-init.sh")
	ver, _ := deploytest.Run(t, "", ci, "--version")
	t.Logf("validating with %s", strings.TrimSpace(ver))
	for _, sc := range scenarios(t) {
		t.Run(sc.name, func(t *testing.T) {
			e := newEnv(t, sc.params)
			for _, n := range renderNodes(t, e) {
				f := filepath.Join(t.TempDir(), n.name+".yaml")
				if err := os.WriteFile(f, []byte(n.cloudInit), 0o600); err != nil {
					t.Fatal(err)
				}
				out, code := deploytest.Run(t, "", ci, "schema", "--config-file", f)
				if code != 0 || !strings.Contains(out, "Valid cloud-config") {
					t.Errorf("%s: cloud-init schema (exit %d):\n%s\n%s", n.name, code, out, n.cloudInit)
				} else {
					t.Logf("%s: %s", n.name, strings.TrimSpace(out))
				}
				checkWithPythonYAML(t, f, n)
				for _, p := range []string{"/usr/local/sbin/baton-deploy", "/usr/local/bin/baton-demo-app", stage + "app-setup"} {
					wf, ok := n.files[p]
					if !ok {
						t.Errorf("%s: cloud-init writes no %s", n.name, p)
						continue
					}
					if len(wf.content) == 0 {
						continue // no app script given
					}
					s := filepath.Join(t.TempDir(), "script")
					if err := os.WriteFile(s, wf.content, 0o600); err != nil {
						t.Fatal(err)
					}
					if out, code := deploytest.Run(t, "", "sh", "-n", s); code != 0 {
						t.Errorf("%s: %s is not valid sh: %s", n.name, p, out)
					}
				}
				// The configuration must pass check-config before baton starts;
				// the online check (one read of the lease) may fail while the role
				// assignment propagates, and must not stop the deployment.
				deploy := string(n.files["/usr/local/sbin/baton-deploy"].content)
				for _, want := range []string{
					"\nrunuser -u baton -- baton check-config -offline -config /etc/baton/baton.toml\n",
					"\nrunuser -u baton -- baton check-config -config /etc/baton/baton.toml >/dev/null ||\n",
					"\nsystemctl enable --now baton\n",
				} {
					if !strings.Contains(deploy, want) {
						t.Errorf("%s: the deploy script lacks %q", n.name, want)
					}
				}
				if got, want := string(n.files[stage+"deb-url"].content), mustString(t, e, "[parameters('batonDebUrl')]"); got != want {
					t.Errorf("%s: deb-url %q, want %q", n.name, got, want)
				}
				if got, want := string(n.files[stage+"app-setup"].content), mustString(t, e, "[parameters('appSetupScript')]"); got != want {
					t.Errorf("%s: app-setup %q, want %q", n.name, got, want)
				}
				if got, want := string(n.files[stage+"demoapp-url"].content), mustString(t, e, "[parameters('demoAppUrl')]"); got != want {
					t.Errorf("%s: demoapp-url %q, want %q", n.name, got, want)
				}
			}
		})
	}
}

// checkWithPythonYAML compares parseWriteFiles with PyYAML (which
// cloud-init brings), so the simple reader cannot hide a YAML mistake.
func checkWithPythonYAML(t *testing.T, file string, n node) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		return
	}
	const prog = `import base64, json, sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
out = {}
for f in d["write_files"]:
    c = f.get("content") or ""
    if f.get("encoding") == "b64":
        c = base64.b64decode(c).decode()
    out[f["path"]] = c
print(json.dumps({"files": out, "keys": sorted(d)}))`
	out, code := deploytest.Run(t, "", py, "-c", prog, file)
	if code != 0 {
		if strings.Contains(out, "No module named 'yaml'") {
			return
		}
		t.Fatalf("%s: PyYAML: %s", n.name, out)
	}
	var got struct {
		Files map[string]string
		Keys  []string
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Keys, []string{"runcmd", "write_files"}) {
		t.Errorf("%s: top-level keys %v", n.name, got.Keys)
	}
	if len(got.Files) != len(n.files) {
		t.Errorf("%s: PyYAML reads %d files, the test %d", n.name, len(got.Files), len(n.files))
	}
	for p, c := range got.Files {
		if string(n.files[p].content) != c {
			t.Errorf("%s: %s: PyYAML reads %q, the test %q", n.name, p, c, n.files[p].content)
		}
	}
}

// TestCheckConfigOffline runs `baton check-config -offline` on each node's
// generated configuration, with the files it names where the deploy script
// puts them: it must be valid and its timing contract must name the load
// balancer's probe. -offline skips the one read of the lease (no Azure
// here); the VM's deploy script runs check-config online.
func TestCheckConfigOffline(t *testing.T) {
	baton := deploytest.Binary(t, "baton", "./cmd/baton")
	for _, sc := range scenarios(t) {
		t.Run(sc.name, func(t *testing.T) {
			e := newEnv(t, sc.params)
			for _, n := range renderNodes(t, e) {
				cfg, p := n.batonConfig(t)
				out, code := deploytest.Run(t, "", baton, "check-config", "-offline", "-config", p)
				if code != 0 {
					t.Errorf("%s: check-config exit %d:\n%s", n.name, code, out)
					continue
				}
				tm := cfg.Timing()
				for _, want := range []string{"is valid", "load balancer probe  5s", "threshold 1", "peer link", "on, 1 peer(s)", "storage outage", "failsafe"} {
					if !strings.Contains(out, want) {
						t.Errorf("%s: check-config output lacks %q:\n%s", n.name, want, out)
					}
				}
				if strings.Contains(out, "\nwarnings\n") {
					t.Errorf("%s: check-config warns:\n%s", n.name, out)
				}
				t.Logf("%s: valid; planned failover ≈ %s, active killed ≈ %s", n.name, tm.PlannedFailover, tm.CrashFailover)
			}
		})
	}
}
