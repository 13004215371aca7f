//go:build unix && !linux

package realkafka

import (
	"os/exec"
	"syscall"
)

// startProcess starts cmd in its own process group. Outside Linux there is
// no parent-death signal: the JVM survives a killed Go process.
func startProcess(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd.Start()
}
