package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// `baton service install|remove`: more Windows services on one host, one
// per configuration (several pairs on the same VMs), beside the service
// "baton" the .msi installs. The service of NAME is "baton-NAME", shown as
// "baton (NAME)", and runs `baton.exe run -service -config FILE` with the .msi's
// account and recovery. Everything here but the calls to the service
// manager (service_cmd_windows.go) is plain Go, tested on every platform.
// The command line says -service: baton then never guesses whether the
// service manager started it.

const serviceUsage = `Usage (Windows, from an elevated prompt):
  baton service install -name NAME [-config FILE]   register the service baton-NAME for FILE
                                                   (default %s); not started
  baton service remove  -name NAME [-timeout D]     stop it (a planned switchover) and remove it
On Linux the package's template unit does the same: systemctl enable --now baton@NAME
reads /etc/baton/NAME.toml.
`

// serviceAccount, serviceRestarts and serviceResetPeriod are what the .msi
// gives the service "baton" (packaging/msi/baton.wxs: ServiceInstall
// Account, the ServiceRecovery custom action); a test keeps them equal.
const (
	serviceAccount     = `NT AUTHORITY\LocalService`
	serviceResetPeriod = 24 * time.Hour
)

var serviceRestarts = []time.Duration{5 * time.Second, 5 * time.Second, 60 * time.Second}

// serviceNameRE is what NAME may be: the same on Windows and as a systemd
// instance name, and a file name (NAME.toml, NAME.log).
var serviceNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// errServiceUnsupported is returned by the service manager calls where
// there is none (every platform but Windows).
var errServiceUnsupported = errors.New("only on Windows")

// serviceSpec is one service as `baton service install` registers it.
type serviceSpec struct {
	name        string // baton-NAME
	display     string // baton (NAME)
	description string
	exe         string   // this baton.exe
	args        []string // run -service -config FILE
	account     string
	restarts    []time.Duration // restart after each failure, the last one repeated
	resetPeriod time.Duration   // the failure count resets after this long
}

func checkServiceName(name string) error {
	if name == "" {
		return errors.New("-name is required")
	}
	if !serviceNameRE.MatchString(name) {
		return fmt.Errorf("-name %q: 1 to 64 letters, digits, '-' or '_', starting with a letter or digit", name)
	}
	return nil
}

// serviceConfigPath is the configuration file of NAME's service: cfg made
// absolute (the service starts in another folder), or NAME.toml in dir,
// the folder of the default configuration.
func serviceConfigPath(name, cfg, dir string, abs func(string) (string, error)) (string, error) {
	if cfg == "" {
		return filepath.Join(dir, name+".toml"), nil
	}
	p, err := abs(cfg)
	if err != nil {
		return "", fmt.Errorf("-config %s: %w", cfg, err)
	}
	return p, nil
}

func newServiceSpec(name, exe, cfg string) serviceSpec {
	return serviceSpec{
		name:    "baton-" + name,
		display: "baton (" + name + ")",
		description: "Active/standby front door for " + cfg +
			": answers the load balancer's probe with 200 only on the node that holds the lease.",
		exe:         exe,
		args:        []string{"run", "-service", "-config", cfg},
		account:     serviceAccount,
		restarts:    serviceRestarts,
		resetPeriod: serviceResetPeriod,
	}
}

// isBatonCommandLine reports whether a service's command line (its
// BinaryPathName) runs `baton run`: `baton service remove` removes no
// other service.
func isBatonCommandLine(cmdline string) bool {
	cmdline = strings.TrimSpace(cmdline)
	var exe, rest string
	if strings.HasPrefix(cmdline, `"`) {
		end := strings.IndexByte(cmdline[1:], '"')
		if end < 0 {
			return false
		}
		exe, rest = cmdline[1:end+1], cmdline[end+2:]
	} else {
		exe, rest, _ = strings.Cut(cmdline, " ")
	}
	base := strings.ToLower(exe[strings.LastIndexAny(exe, `\/`)+1:])
	args := strings.Fields(rest)
	return strings.HasPrefix(base, "baton") && strings.HasSuffix(base, ".exe") && len(args) > 0 && args[0] == "run"
}

// serviceLogPath is where `baton run` under the service manager writes its
// log: next to its configuration file, named after it (baton.toml:
// baton.log, shop.toml: shop.log), so that each service has its own.
func serviceLogPath(cfg string) string {
	base := filepath.Base(cfg)
	if ext := filepath.Ext(base); ext != ".log" {
		base = strings.TrimSuffix(base, ext)
	}
	return filepath.Join(filepath.Dir(cfg), base+".log")
}

// serviceCommandLine is a service's command line (its ImagePath): the
// program's path always in quotes, so that Windows can never take a part
// of a path with spaces for the program (CWE-428), and each argument
// quoted where it needs to be.
func serviceCommandLine(exe string, args []string) string {
	s := `"` + exe + `"`
	for _, a := range args {
		s += " " + quoteArg(a)
	}
	return s
}

// quoteArg quotes s for a Windows command line when it has a space, a tab
// or a quote, or is empty, by the rules programs split their command line
// with (CommandLineToArgvW): backslashes count only before a quote. It is
// syscall.EscapeArg, which exists only on Windows.
func quoteArg(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"") {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	slashes := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			slashes++
		case '"':
			b.WriteString(strings.Repeat(`\`, slashes+1)) // the backslashes before it, and the quote, escaped
			slashes = 0
		default:
			slashes = 0
		}
		b.WriteByte(s[i])
	}
	b.WriteString(strings.Repeat(`\`, slashes)) // before the closing quote
	b.WriteByte('"')
	return b.String()
}

func cmdService(args []string, stdout, stderr io.Writer) int {
	dir := filepath.Dir(defaultConfigPath())
	if len(args) == 0 || (args[0] != "install" && args[0] != "remove") {
		fmt.Fprintf(stderr, serviceUsage, filepath.Join(dir, "NAME.toml"))
		return exitUsage
	}
	action := args[0]
	fs := newFlags("service "+action, stderr)
	name := fs.String("name", "", "the service is baton-NAME")
	var cfgFlag *string
	var timeout *time.Duration
	if action == "install" {
		cfgFlag = fs.String("config", "", "configuration file (default "+filepath.Join(dir, "NAME.toml")+")")
	} else {
		timeout = fs.Duration("timeout", 2*time.Minute, "how long to wait for the service to stop (drain.exit_delay + drain.timeout)")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "baton service %s: unexpected argument %q\n", action, fs.Arg(0))
		return exitUsage
	}
	if err := checkServiceName(*name); err != nil {
		fmt.Fprintf(stderr, "baton service %s: %v\n", action, err)
		return exitUsage
	}
	if !serviceManager {
		fmt.Fprintf(stderr, "baton service: %v; on Linux the package's template unit runs more configurations:\n"+
			"  systemctl enable --now baton@%s    (reads /etc/baton/%s.toml)\n", errServiceUnsupported, *name, *name)
		return exitUsage
	}

	if action == "remove" {
		if err := removeService("baton-"+*name, *timeout, stdout); err != nil {
			fmt.Fprintf(stderr, "baton service remove: %v\n", err)
			return exitFailure
		}
		return exitOK
	}
	cfg, err := serviceConfigPath(*name, *cfgFlag, dir, filepath.Abs)
	if err != nil {
		fmt.Fprintf(stderr, "baton service install: %v\n", err)
		return exitUsage
	}
	if _, ok := loadConfig(cfg, stderr); !ok {
		return exitUsage
	}
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		fmt.Fprintf(stderr, "baton service install: cannot find this program's path: %v\n", err)
		return exitFailure
	}
	sp := newServiceSpec(*name, exe, cfg)
	if err := installService(sp, stderr); err != nil {
		fmt.Fprintf(stderr, "baton service install: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "installed the service %s (%q): %s\n"+
		"account %s, automatic start, restarted after a failure; not started.\n"+
		"log: %s\n"+
		"Check that it fits beside the others: baton check-config %s %s\n"+
		"Start it: Start-Service %s\n",
		sp.name, sp.display, serviceCommandLine(sp.exe, sp.args), sp.account, serviceLogPath(cfg),
		defaultConfigPath(), cfg, sp.name)
	return exitOK
}
