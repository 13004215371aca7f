package main_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// millrace run sets GOGC=200 (internal/gctune) unless the environment
// sets GOGC, and leaves GOMEMLIMIT alone when it is set: read back from the
// real process's /metrics (the Go collector's go_gc_gogc_percent and
// go_gc_gomemlimit_bytes) and its startup log. The cgroup limit is
// internal/gctune's unit test.
func TestRun_sets_the_garbage_collector_unless_the_environment_does(t *testing.T) {
	for _, n := range []string{"GOGC", "GOMEMLIMIT", "AUTOMEMLIMIT"} {
		t.Setenv(n, "") // restored after the test
		os.Unsetenv(n)
	}
	dir := t.TempDir()
	writeFile(t, dir, "pipelines.yaml", `version: 1
pipelines:
  - name: p
    input: p.in
    stages:
      - {name: s, filter: jq, config: {program: "."}}
`)
	// Nothing listens on the port: run waits for the brokers, admin up.
	brokers := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	for _, c := range []struct {
		name     string
		env      []string
		gogc     float64
		memLimit float64 // 0: not checked
		logged   string
	}{
		{"default", nil, 200, 0, "GOGC=200"},
		{"from the environment", []string{"GOGC=50", "GOMEMLIMIT=300MiB"}, 50, 300 << 20,
			"GOGC=50 (from the environment), GOMEMLIMIT=300MiB (from the environment)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			run := start(t, "run", dir, c.env, "run", "--brokers", brokers, "--connect-timeout", "0")
			addr := adminAddr(t, run)
			fams := scrape(t, addr)
			if got := sumOf(fams, "go_gc_gogc_percent", nil); got != c.gogc {
				t.Errorf("go_gc_gogc_percent %v, want %v", got, c.gogc)
			}
			if got := sumOf(fams, "go_gc_gomemlimit_bytes", nil); c.memLimit != 0 && got != c.memLimit {
				t.Errorf("go_gc_gomemlimit_bytes %v, want %v", got, c.memLimit)
			}
			run.waitLog("garbage collector", 1, time.Minute)
			if log := run.logText(); !strings.Contains(log, c.logged) {
				t.Errorf("the startup log does not say %q:\n%s", c.logged, log)
			}
			run.stop(30 * time.Second)
		})
	}
}
