package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
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

// userHZ is the unit of the CPU times in /proc/<pid>/stat (USER_HZ, 100
// on Linux).
const userHZ = 100

// childCPU is the CPU time (user and system) process pid has used so far,
// every thread included, to 10 ms; ok is false if it cannot be read.
func childCPU(pid int) (cpu time.Duration, ok bool) {
	return statCPU(fmt.Sprintf("/proc/%d/stat", pid))
}

// statCPU is utime + stime of a /proc stat file (a process's or a
// thread's), to 10 ms.
func statCPU(path string) (cpu time.Duration, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	// Fields count from after the command name, which is in parentheses
	// and may hold spaces: f[0] is field 3, utime and stime are 14 and 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, false
	}
	user, err1 := strconv.ParseInt(f[11], 10, 64)
	sys, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(user+sys) * (time.Second / userHZ), true
}

// jitThreads are the threads of process pid that run HotSpot's JIT
// compilers (named "C1 CompilerThreadN" and "C2 CompilerThreadN", which
// /proc cuts to 15 bytes), by thread id; none if it cannot be read.
// HotSpot starts them with the JVM (with one compiler of each kind, as on
// a 2-core machine, they never change), so a drain looks them up once.
func jitThreads(pid int) []int {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var tids []int
	for _, ent := range ents {
		comm, err := os.ReadFile(dir + "/" + ent.Name() + "/comm")
		if err != nil {
			continue
		}
		if c := string(comm); strings.HasPrefix(c, "C1 CompilerThre") || strings.HasPrefix(c, "C2 CompilerThre") {
			if tid, err := strconv.Atoi(ent.Name()); err == nil {
				tids = append(tids, tid)
			}
		}
	}
	return tids
}

// threadsCPU is the CPU time (user and system) threads tids of process
// pid have used so far, to 10 ms; a thread that has ended counts 0. ok is
// false if tids is empty.
func threadsCPU(pid int, tids []int) (cpu time.Duration, ok bool) {
	for _, tid := range tids {
		if c, ok := statCPU(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid)); ok {
			cpu += c
		}
	}
	return cpu, len(tids) > 0
}

// machineCPU is the CPU time every core of the machine has spent busy so
// far (every process's, not only the bench's: others may share it), to
// 10 ms: the first line of /proc/stat less idle and iowait; ok is false if
// it cannot be read.
func machineCPU() (busy time.Duration, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 6 || f[0] != "cpu" {
		return 0, false
	}
	var total, idle int64
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, false
		}
		// guest and guest_nice (fields 9 and 10) are already in user and nice.
		if i >= 8 {
			break
		}
		total += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return time.Duration(total-idle) * (time.Second / userHZ), true
}
