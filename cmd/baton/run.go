package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/batonproxy/baton/cmd/baton/internal/node"
	"github.com/batonproxy/baton/config"
	"github.com/batonproxy/baton/lease"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes (README: Command line).
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

const usage = `baton - an active/standby front door for VMs

Usage:
  baton run          [-config FILE]        run the node in the foreground
  baton check-config [-config FILE]        validate, print the effective config and the timing contract
  baton check-config -config A -config B   several files for one host: also no shared port, lease or lock
  baton status       [-admin URL] [-json]  role, term, holder, lease time left, backend health
  baton step-down    [-admin URL] [-to N]  planned switchover away from this node (-to N: to node N)
  baton maintenance  on|off [-admin URL]   hold this node out of candidacy
  baton reload       [-admin URL]          re-read the config file (same as SIGHUP)
  baton history      [-config FILE]        who held the lease in each term, how it ended (-json, -n N)
  baton drill        -url URL [-to N]      a measured switchover through the load balancer (baton drill -h)
  baton service      install|remove -name N   Windows: the service baton-N for another config file
  baton version

Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
The default config file is %s.
`

// run is the only place where errors become exit codes.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, usage, defaultConfigPath())
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(rest, stderr)
	case "check-config":
		return cmdCheckConfig(rest, stdout, stderr)
	case "status":
		return cmdStatus(rest, stdout, stderr)
	case "step-down":
		return cmdStepDown(rest, stdout, stderr)
	case "maintenance":
		return cmdMaintenance(rest, stdout, stderr)
	case "reload":
		return cmdReload(rest, stdout, stderr)
	case "history":
		return cmdHistory(rest, stdout, stderr)
	case "drill":
		return cmdDrill(rest, stdout, stderr)
	case "service": // service_cmd.go: more Windows services, one per configuration
		return cmdService(rest, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintf(stdout, "baton %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return exitOK
	case "help", "-h", "-help", "--help":
		fmt.Fprintf(stdout, usage, defaultConfigPath())
		return exitOK
	default:
		fmt.Fprintf(stderr, "baton: unknown command %q\n\n"+usage, cmd, defaultConfigPath())
		return exitUsage
	}
}

func defaultConfigPath() string {
	if runtime.GOOS == "windows" {
		pd := os.Getenv("ProgramData")
		if pd == "" {
			pd = `C:\ProgramData`
		}
		return filepath.Join(pd, "baton", "baton.toml")
	}
	return "/etc/baton/baton.toml"
}

// newFlags returns a flag set that reports errors to stderr and does not
// exit the process.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("baton "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// loadConfig loads the file named by -config and reports every problem.
func loadConfig(path string, stderr io.Writer) (*config.Config, bool) {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintf(stderr, "baton: invalid configuration:\n%v\n", err)
		return nil, false
	}
	return cfg, true
}

// runFlags are the flags of `baton run`.
type runFlags struct {
	config  string
	service bool // started by the Windows service manager (its command line says so)
}

func (f *runFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "config", defaultConfigPath(), "configuration file")
	fs.BoolVar(&f.service, "service", false, "run under the Windows service manager (the service's command line carries it)")
}

// peekRunFlags reads `baton run`'s flags quietly, as far as they parse,
// before the host starts: under the service manager even a usage error
// must reach the service's log, whose place follows -config.
func peekRunFlags(args []string) runFlags {
	var f runFlags
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f.register(fs)
	_ = fs.Parse(args) // cmdRun parses again and reports the error
	return f
}

func cmdRun(args []string, stderr io.Writer) (code int) {
	host, stderr := startHost(peekRunFlags(args), stderr) // systemd, the Windows service manager or a terminal
	defer func() { code = host.stop(code) }()
	fs := newFlags("run", stderr)
	var f runFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if f.service && !serviceManager {
		fmt.Fprintln(stderr, "baton run: -service is for the Windows service manager; systemd runs baton without it")
		return exitUsage
	}
	cfg, ok := loadConfig(f.config, stderr)
	if !ok {
		return exitUsage
	}
	log, level, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "baton: log: %v\n", err)
		return exitUsage
	}
	defer log.Sync()

	n, err := node.New(cfg, log, version)
	if err != nil {
		log.Error("cannot start", zap.Error(err))
		return exitFailure
	}
	n.SetLevel(level)
	if err := host.run(n, log); err != nil { // signals, SIGHUP reloads, sd_notify, Windows service control
		log.Error("node failed", zap.Error(err))
		return exitFailure
	}
	return exitOK
}

func cmdCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check-config", stderr)
	var flagged configList
	fs.Var(&flagged, "config", "configuration file (default "+defaultConfigPath()+"); repeat it, or name files as arguments, to check several for one host")
	offline := fs.Bool("offline", false, "do not read the lease from storage")
	files, err := parseConfigFiles(fs, args, &flagged)
	if err != nil {
		return exitUsage
	}
	if len(files) > 1 { // several pairs on one host: checkconfigs.go
		return checkConfigs(files, *offline, stdout, stderr)
	}
	path := new(defaultConfigPath())
	if len(files) == 1 {
		path = &files[0]
	}
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return exitUsage
	}
	fmt.Fprintf(stdout, "# %s is valid. Effective configuration (secrets redacted):\n\n%s\n", *path, cfg.Redacted())
	fmt.Fprintf(stdout, "\n%s", cfg.Timing())
	if *offline || cfg.Lease.Backend != "azblob" {
		return exitOK
	}
	return checkStorage(cfg, stdout, stderr)
}

// checkStorage reads the lease once: a storage that can never work as
// configured is a configuration error (exit 2); a passing fault is only a
// warning, since it may be gone when the node starts.
func checkStorage(cfg *config.Config, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	rec, held, err := node.CheckStorage(ctx, cfg, zap.NewNop())
	switch {
	case errors.Is(err, lease.ErrConfig):
		fmt.Fprintf(stderr, "baton: lease storage: %v\n", err)
		return exitUsage
	case err != nil:
		fmt.Fprintf(stderr, "baton: warning: could not read the lease (the node would keep retrying): %v\n", err)
		return exitOK
	case held:
		fmt.Fprintf(stdout, "\nlease storage reachable: held by %s (term %d, %s)\n", rec.Holder, rec.Term, rec.AdvertiseURL)
	default:
		fmt.Fprintf(stdout, "\nlease storage reachable: nobody holds the lease (last term %d)\n", rec.Term)
	}
	return exitOK
}

// newLogger builds the process logger from [log]; its level can be changed
// later through the returned AtomicLevel.
func newLogger(c config.Log, stderr io.Writer) (*zap.Logger, zap.AtomicLevel, error) {
	lvl, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, zap.AtomicLevel{}, fmt.Errorf("log.level: %w", err)
	}
	level := zap.NewAtomicLevelAt(lvl)
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch c.Format {
	case "console":
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	case "json", "":
		enc = zapcore.NewJSONEncoder(encCfg)
	default:
		return nil, level, errors.New("log.format: must be json or console")
	}
	out := zapcore.AddSync(stderr)
	if c.File != "" {
		f, err := os.OpenFile(c.File, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			return nil, level, fmt.Errorf("log.file: %w", err)
		}
		out = zapcore.AddSync(f)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(out), level)), level, nil
}
