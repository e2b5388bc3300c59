//go:build !unix && !windows

package healthcheck

import "os/exec"

// procTree on other platforms kills the command's process only.
type procTree struct{}

func (t *procTree) prepare(*exec.Cmd)        {}
func (t *procTree) started(*exec.Cmd)        {}
func (t *procTree) kill(cmd *exec.Cmd) error { return cmd.Process.Kill() }
func (t *procTree) waitExit(*exec.Cmd) bool  { return false }
func (t *procTree) killRest(*exec.Cmd)       {}
func (t *procTree) release()                 {}
