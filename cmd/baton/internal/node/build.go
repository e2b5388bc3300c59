package node

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/batonproxy/baton/config"
	"github.com/batonproxy/baton/healthcheck"
	"github.com/batonproxy/baton/internal/azure"
	"github.com/batonproxy/baton/lease"
	"github.com/batonproxy/baton/lease/azlock"
)

// newLock builds the lease backend named by lease.backend, reading its
// secrets from their files or environment variables.
func newLock(cfg *config.Config, log *zap.Logger) (lease.Lock, error) {
	switch cfg.Lease.Backend {
	case "file":
		l, err := lease.NewFileLock(cfg.Lease.File.Path)
		if err != nil {
			return nil, fmt.Errorf("lease.file.path: %w", err)
		}
		return l, nil
	case "azblob":
		c, err := azblobClient(cfg)
		if err != nil {
			return nil, err
		}
		a := cfg.Lease.AzBlob
		return azlock.New(azlock.Options{Options: c, Container: a.Container, Blob: a.Blob}, log)
	default:
		return nil, fmt.Errorf("lease.backend: unknown backend %q", cfg.Lease.Backend)
	}
}

// azblobClient is the storage account settings of [lease.azblob] with their
// secrets read from files or environment variables; the lease and the ACME
// certificate storage share them.
func azblobClient(cfg *config.Config) (azure.Options, error) {
	a := cfg.Lease.AzBlob
	o := azure.Options{
		AccountURL: a.AccountURL, Auth: a.Auth, ClientID: a.ClientID,
		AccountName: a.AccountName, CallTimeout: a.CallTimeout.D(),
	}
	var err error
	switch a.Auth {
	case "connection-string":
		o.ConnectionString, err = config.ReadSecret(a.ConnectionStringEnv, a.ConnectionStringFile)
	case "shared-key":
		o.AccountKey, err = config.ReadSecret(a.AccountKeyEnv, a.AccountKeyFile)
	case "sas":
		o.SASToken, err = config.ReadSecret(a.SASTokenEnv, a.SASTokenFile)
	}
	if err != nil {
		return o, fmt.Errorf("lease.azblob (auth %s): %w", a.Auth, err)
	}
	return o, nil
}

// newMonitor builds the health monitor from the [[health.check]] entries
// and [health.passive] (with its [[health.passive.path]] rules).
func newMonitor(cfg *config.Config, m *metrics, startHealthy bool, log *zap.Logger) (*healthcheck.Monitor, error) {
	var specs []healthcheck.CheckSpec
	for _, c := range cfg.Health.Checks {
		var (
			chk healthcheck.Checker
			err error
		)
		switch c.Type {
		case "http":
			expect := make([]healthcheck.StatusRange, len(c.ExpectStatus))
			for i, r := range c.ExpectStatus {
				expect[i] = healthcheck.StatusRange{Min: r.Min, Max: r.Max}
			}
			chk, err = healthcheck.NewHTTP(healthcheck.HTTPOptions{
				URL: c.URL, Display: config.RedactURL(c.URL), Method: c.Method, Headers: c.Headers, Host: c.Host,
				Expect: expect, BodyRegex: c.BodyRegex,
				CAFile: c.TLSCAFile, SkipVerify: c.TLSSkipVerify, MaxBodyBytes: c.MaxBodyBytes,
			})
		case "tcp":
			chk = healthcheck.NewTCP(c.Address)
		case "exec":
			chk = healthcheck.NewExec(c.Command)
		default:
			err = fmt.Errorf("unknown type %q", c.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("health.check %q: %w", c.Name, err)
		}
		specs = append(specs, healthcheck.CheckSpec{
			Name: c.Name, Interval: c.Interval.D(), Timeout: c.Timeout.D(),
			Rise: c.Rise, Fall: c.Fall, Required: c.Required == nil || *c.Required,
			Checker: chk,
		})
	}
	p := cfg.Health.Passive
	var paths []healthcheck.PathSpec
	for _, r := range p.Paths {
		paths = append(paths, healthcheck.PathSpec{
			Prefix: r.Prefix, ErrorRate: r.ErrorRate, Window: r.Window.D(),
			MinRequests: r.MinRequests, Cooldown: r.Cooldown.D(),
		})
	}
	return healthcheck.New(healthcheck.Options{
		Checks: specs,
		Passive: healthcheck.PassiveSpec{
			ErrorRate: p.ErrorRate, Window: p.Window.D(), MinRequests: p.MinRequests,
			MaxInFlight: p.MaxInFlight, Cooldown: p.Cooldown.D(), Paths: paths,
		},
		History:      cfg.Health.History,
		StartHealthy: startHealthy,
		OnResult:     m.onCheckResult,
	}, log)
}

// CheckStorage builds the configured lease backend and reads the holder
// record once, so `baton check-config` can explain a storage
// misconfiguration without starting anything. Errors wrapping
// lease.ErrConfig mean the storage can never work as configured.
func CheckStorage(ctx context.Context, cfg *config.Config, log *zap.Logger) (lease.Record, bool, error) {
	l, err := newLock(cfg, log)
	if err != nil {
		return lease.Record{}, false, err
	}
	return l.Read(ctx)
}
