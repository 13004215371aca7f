package cli

import "syscall"

// prSetDumpable is PR_SET_DUMPABLE of prctl(2).
const prSetDumpable = 4

// undumpable marks the process not dumpable (prctl(2) PR_SET_DUMPABLE 0,
// as ssh-agent and gpg-agent do): its /proc/<pid>/environ, mem and maps
// then belong to root, so a program the exec filter runs (as millrace's
// user, which is not root) cannot read millrace's environment, and with it
// the Kafka password, there. It also means no core dumps, and no ptrace by
// millrace's user. Children are dumpable again after their execve.
func undumpable() error {
	_, _, errno := syscall.RawSyscall6(syscall.SYS_PRCTL, prSetDumpable, 0, 0, 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
