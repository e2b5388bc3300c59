package main

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/batonproxy/baton/config"
)

// configList is a -config flag that may be repeated.
type configList []string

func (l *configList) String() string { return strings.Join(*l, ", ") }

func (l *configList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// parseConfigFiles parses args with fs and returns the -config files, then
// the files named as arguments, in order. Flags may follow file names
// (`check-config a.toml b.toml -offline`).
func parseConfigFiles(fs *flag.FlagSet, args []string, flagged *configList) ([]string, error) {
	var named []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		named = append(named, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return append(append([]string(nil), *flagged...), named...), nil
}

// checkConfigs is check-config with several files meant for one host
// (several pairs on the same VMs): each must be valid, and no two may take
// the same port, lease or instance lock (config.HostConflicts). Exit 2
// names the files and keys of every problem.
func checkConfigs(paths []string, offline bool, stdout, stderr io.Writer) int {
	seen := map[string]string{}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			abs = p
		}
		if prev, ok := seen[abs]; ok {
			fmt.Fprintf(stderr, "baton check-config: %s is named twice (as %s and %s)\n", abs, prev, p)
			return exitUsage
		}
		seen[abs] = p
	}
	var cfgs []*config.Config
	invalid := 0
	for _, p := range paths {
		cfg, err := config.Load(p)
		if err != nil {
			fmt.Fprintf(stderr, "baton: invalid configuration:\n%v\n", err)
			invalid++
			continue
		}
		cfgs = append(cfgs, cfg)
		fmt.Fprintf(stdout, "# %s is valid: node %s, %s\n", p, cfg.NodeName, describeHost(cfg))
	}
	conflicts := config.HostConflicts(cfgs)
	for _, c := range conflicts {
		fmt.Fprintf(stderr, "baton: %s and %s cannot run on one host: %s\n    %v\n    %v\n", c.A.File, c.B.File, c.Msg, c.A, c.B)
	}
	if invalid > 0 || len(conflicts) > 0 {
		noun := "conflicts"
		if len(conflicts) == 1 {
			noun = "conflict"
		}
		fmt.Fprintf(stderr, "baton check-config: %d of %d files invalid, %d %s between them\n", invalid, len(paths), len(conflicts), noun)
		return exitUsage
	}
	fmt.Fprintf(stdout, "\n# %d configurations can run on one host: no port, lease or instance lock in common.\n"+
		"# (Check each file alone for its effective configuration and timing contract.)\n", len(cfgs))
	code := exitOK
	if offline {
		return code
	}
	for _, cfg := range cfgs {
		if cfg.Lease.Backend != "azblob" {
			continue
		}
		fmt.Fprintf(stdout, "\n# %s:", cfg.Path)
		code = max(code, checkStorage(cfg, stdout, stderr))
	}
	return code
}

// describeHost lists what a configuration takes on its host, in one line.
func describeHost(c *config.Config) string {
	var parts []string
	for _, l := range []struct{ key, v string }{
		{"http", c.Listen.HTTP}, {"https", c.Listen.HTTPS}, {"probe", c.Probe.Listen},
		{"admin", c.Admin.Listen}, {"peer", c.Peer.Listen},
	} {
		if l.v != "" {
			parts = append(parts, l.key+" "+l.v)
		}
	}
	lease := "lease file " + c.Lease.File.Path
	if c.Lease.Backend == "azblob" {
		lease = "lease blob " + c.Lease.AzBlob.Container + "/" + c.Lease.AzBlob.Blob
	}
	return strings.Join(parts, ", ") + "; " + lease + "; state " + c.Lease.StateDir
}
