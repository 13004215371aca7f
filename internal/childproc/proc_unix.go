//go:build unix

package childproc

import (
	"errors"
	"os"
	"syscall"
)

// SignalGroup sends sig to the process group led by pid (set up by
// Start). A group that is already gone is not an error.
func SignalGroup(pid int, sig syscall.Signal) error {
	err := syscall.Kill(-pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	if err != nil {
		return os.NewSyscallError("kill", err)
	}
	return nil
}
