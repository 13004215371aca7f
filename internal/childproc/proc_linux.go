package childproc

import (
	"os/exec"
	"runtime"
	"syscall"
)

// Start starts cmd in its own process group, with SIGKILL as its
// parent-death signal so the child dies with the Go process.
//
// The parent-death signal fires when the OS thread that forked the child
// exits, not only when the process does. The Go runtime only ends a thread
// when a goroutine exits while locked to it, so locking the thread for the
// duration of the fork, and unlocking it afterwards, guarantees the forking
// thread is one the runtime keeps, whatever the caller's goroutine does.
func Start(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return cmd.Start()
}
