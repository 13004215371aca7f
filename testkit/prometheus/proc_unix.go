//go:build unix

package prometheus

import (
	"errors"
	"os"
	"syscall"
)

// signalGroup sends sig to the process group led by pid (set up by
// startProcess). A group that is already gone is not an error.
func signalGroup(pid int, sig syscall.Signal) error {
	err := syscall.Kill(-pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	if err != nil {
		return os.NewSyscallError("kill", err)
	}
	return nil
}
