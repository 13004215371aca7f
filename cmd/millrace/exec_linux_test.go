package main_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/millrace/millrace/testkit"
)

// execMaxPeakRSS bounds the peak resident set of `millrace run` while an
// exec command writes 1 GiB: far below the gigabyte, well above the
// process's own size and the 16 MiB of output it may hold.
const execMaxPeakRSS = 200_000_000 // bytes

// TestExec_a_command_that_writes_1_GiB_is_quarantined is issue 18's
// acceptance test of exec's output limit, on the real binary: a command
// that writes 1 GiB to stdout is killed once it passes the default
// max_output_bytes (16 MiB) and its record is quarantined with "output
// exceeds"; the stage goes on with the next record; the peak RSS of
// `millrace run` stays under execMaxPeakRSS; and no process of the
// command remains. The command's processes carry a marker, in argv and in
// their environment, that the test looks for in /proc.
func TestExec_a_command_that_writes_1_GiB_is_quarantined(t *testing.T) {
	started := time.Now()
	b := testkit.Embedded(t)
	brokers := strings.Join(b.Brokers, ",")
	dir := t.TempDir()
	name := "exec-big-" + testkit.Unique()
	marker := "millrace-exec-marker-" + testkit.Unique()
	writeFile(t, dir, "pipelines.yaml", fmt.Sprintf(`version: 1
pipelines:
  - name: %[1]s
    input: %[1]s.in
    output: %[1]s.out
    partitions: 1
    stages:
      - name: run
        filter: exec
        config:
          # $0 is the marker; the environment carries it to head as well.
          command: [sh, -c, 'if [ "$(cat)" = big ]; then head -c 1073741824 /dev/zero; else echo ok; fi', %[2]s]
          env: {EXEC_TEST_MARKER: %[2]s}
`, name, marker))
	if out, stderr, code := cli(t, dir, "big\nok\n", "produce", "--brokers", brokers, "--pipeline", name); code != 0 {
		t.Fatalf("produce: exit %d\n%s%s", code, out, stderr)
	}
	// The scan below finds a process that carries the marker.
	probe := exec.Command("sleep", "60")
	probe.Env = append(os.Environ(), "EXEC_TEST_MARKER="+marker)
	if err := probe.Start(); err != nil {
		t.Fatal(err)
	}
	found := markedProcesses(t, marker)
	_ = probe.Process.Kill()
	_ = probe.Wait()
	if len(found) != 1 || found[0] != probe.Process.Pid {
		t.Fatalf("the /proc scan found %v, want the probe %d", found, probe.Process.Pid)
	}

	run := start(t, "run", dir, nil, "run", "--brokers", brokers)
	run.waitLog("stage ready", 1, 20*time.Second) // its topics exist
	q := b.Read(t, name+".quarantine", 1, 20*time.Second)[0]
	if reason := q.Headers["millrace-error"]; !strings.Contains(reason, "output exceeds max_output_bytes 16 MiB") {
		t.Fatalf("quarantined with millrace-error %q, want \"output exceeds max_output_bytes 16 MiB\"", reason)
	}
	if string(q.Value) != "big" {
		t.Errorf("quarantined payload %q, want the record as it came in: \"big\"", q.Value)
	}
	out := b.Read(t, name+".out", 1, 20*time.Second)
	if len(out) != 1 || string(out[0].Value) != "ok\n" {
		t.Fatalf("output %q, want the next record processed: \"ok\\n\"", out[0].Value)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return len(markedProcesses(t, marker)) == 0 },
		"processes of the command remain: %v", markedProcesses(t, marker))
	peak := peakRSS(t, run.cmd.Process.Pid)
	run.stop(30 * time.Second)

	elapsed := time.Since(started)
	t.Logf("exec 1 GiB: quarantined with %q; peak RSS of millrace run (VmHWM) %.1f MB (limit %d MB); %s in all",
		q.Headers["millrace-error"], float64(peak)/1e6, execMaxPeakRSS/1_000_000, elapsed.Round(10*time.Millisecond))
	if peak >= execMaxPeakRSS {
		t.Errorf("peak RSS of millrace run is %d bytes, want under %d", peak, execMaxPeakRSS)
	}
}

// markedProcesses returns the pids of the processes whose command line or
// environment holds marker (readable for the processes of the test's
// user; a zombie has neither).
func markedProcesses(t *testing.T, marker string) []int {
	t.Helper()
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == os.Getpid() {
			continue
		}
		for _, f := range []string{"cmdline", "environ"} {
			b, err := os.ReadFile(filepath.Join(d, f)) // a process gone or not ours: not readable
			if err == nil && bytes.Contains(b, []byte(marker)) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// peakRSS returns the peak resident set size of process pid, in bytes
// (VmHWM of /proc/<pid>/status).
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("/proc/%d/status has no VmHWM", pid)
	return 0
}
