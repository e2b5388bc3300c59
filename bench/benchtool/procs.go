//go:build linux

package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// service is one process the benchmark started.
type service struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func (s *service) pid() int { return s.cmd.Process.Pid }

// startService starts argv in its own process group (so a Ctrl-C on the
// terminal reaches only benchtool, which stops it in order), with output to
// dir/name.log.
func startService(dir, name string, env []string, argv ...string) (*service, error) {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &service{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		logf.Close()
		close(s.done)
	}()
	return s, nil
}

// stop ends the process: SIGTERM, then SIGKILL after a grace period.
func (s *service) stop(grace time.Duration) {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
		s.cmd.Process.Kill()
		<-s.done
	}
}

// waitHTTP polls url until it answers 200, the process exits or limit
// passes.
func waitHTTP(ctx context.Context, s *service, url string, limit time.Duration) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		Proxy: nil, DisableKeepAlives: true,
		TLSClientConfig: insecureTLS(),
	}}
	deadline := time.Now().Add(limit)
	for {
		res, err := client.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s did not answer 200 within %s (last: %v); see %s.log", s.name, url, limit, err, s.name)
		}
		select {
		case <-s.done:
			return fmt.Errorf("%s exited: %v; see %s.log", s.name, s.err, s.name)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
