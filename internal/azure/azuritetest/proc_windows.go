package azuritetest

import "os/exec"

const binName = "azurite-blob.cmd"

func setProcAttr(*exec.Cmd) {}

// Windows has no process groups to signal here: end the process itself.
func terminate(cmd *exec.Cmd) { _ = cmd.Process.Kill() }

func kill(cmd *exec.Cmd) { _ = cmd.Process.Kill() }
