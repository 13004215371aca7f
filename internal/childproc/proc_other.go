//go:build unix && !linux

package childproc

import (
	"os/exec"
	"syscall"
)

// Start starts cmd in its own process group. Outside Linux there is
// no parent-death signal: the child survives a killed Go process.
func Start(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd.Start()
}
