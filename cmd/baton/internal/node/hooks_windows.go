//go:build windows

package node

import "os/exec"

// killGroup: on Windows the hook process itself is killed at its timeout
// (its children are not tracked).
func killGroup(cmd *exec.Cmd) {}
