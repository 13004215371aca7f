//go:build unix && !linux

package prometheus

import (
	"os/exec"
	"syscall"
)

// startProcess starts cmd in its own process group. Outside Linux there is
// no parent-death signal: the server survives a killed test binary.
func startProcess(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd.Start()
}
