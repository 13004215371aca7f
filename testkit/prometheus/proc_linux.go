package prometheus

import (
	"os/exec"
	"runtime"
	"syscall"
)

// startProcess starts cmd in its own process group, with SIGKILL as its
// parent-death signal so the server dies with the test binary. The thread
// that forks is locked for the fork: the signal fires when that thread
// exits, and the runtime keeps threads that were only locked for a while.
func startProcess(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return cmd.Start()
}
