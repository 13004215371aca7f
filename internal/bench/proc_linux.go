package main

import (
	"os/exec"
	"syscall"
	"time"
)

// setParentDeath has the kernel kill cmd's process if the bench dies
// first, so a killed bench leaves no millrace process behind.
func setParentDeath(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// processCPU is the CPU time (user and system) the bench process has used
// so far, every thread included; ok is false if it cannot be read.
func processCPU() (cpu time.Duration, ok bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
