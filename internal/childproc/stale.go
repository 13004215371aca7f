// Package childproc runs the child processes of the test harnesses (a
// real Kafka broker, a real Prometheus server): each in its own process
// group, killed with the Go process that started it (Linux's parent-death
// signal), with a temp directory that later runs clean up when that
// process was killed.
package childproc

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ownerFile in a child's temp dir holds the pid of the Go process that
// started it. The child dies with that process (parent-death signal, see
// Start), but the directory stays behind when the process is killed; later
// OwnedTempDir calls of the same prefix remove it.
const ownerFile = "owner.pid"

// OwnedTempDir makes a new directory under os.TempDir() named prefix and a
// random suffix, owned by this process, after removing the directories of
// that prefix whose owning process is gone.
func OwnedTempDir(prefix string) (string, error) {
	removeStaleDirs(prefix)
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// removeStaleDirs deletes the temp dirs of prefix whose owning process is
// gone.
func removeStaleDirs(prefix string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), prefix+"*"))
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
