package main

import (
	"os/exec"
	"syscall"
)

// setParentDeath has the kernel kill cmd's process if the bench dies
// first, so a killed bench leaves no millrace process behind.
func setParentDeath(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
