package prometheus

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// dirPrefix names the servers' temp directories under os.TempDir().
const dirPrefix = "millrace-prometheus-"

// ownerFile in a server's temp dir holds the pid of the test binary that
// started it. The server dies with that process (parent-death signal),
// but the directory stays behind when the process is killed; later Starts
// remove it.
const ownerFile = "owner.pid"

// writeOwner records the current process as the owner of dir.
func writeOwner(dir string) error {
	return os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644)
}

// removeStaleDirs deletes server temp dirs whose owning process is gone.
func removeStaleDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, d := range dirs {
		if ownerGone(d) {
			os.RemoveAll(d)
		}
	}
}

// ownerGone reports whether dir has an owner file naming a dead process.
func ownerGone(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return false
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
