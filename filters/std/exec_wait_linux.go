package std

import "golang.org/x/sys/unix"

// waitExit waits for the child process pid to exit without reaping it: until
// it is reaped its pid, which is also the id of the process group it leads,
// cannot be reused, so the group can be killed safely.
func waitExit(pid int) error {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return err
		}
	}
}
