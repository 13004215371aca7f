package main_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// With the brokers down at start, run retries and logs each attempt: by
// default it gives up after --connect-timeout with a clear error (exit 1);
// with --connect-timeout 0 it waits until the broker comes up, then runs.
func TestRun_waits_for_the_brokers_as_long_as_connect_timeout_says(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	brokers := fmt.Sprintf("127.0.0.1:%d", port)
	writeFile(t, dir, "pipelines.yaml", `version: 1
pipelines:
  - name: wait
    input: wait.in
    stages:
      - {name: tag, filter: jq, config: {program: '.'}}
`)
	_, stderr, code := cli(t, dir, "", "run", "--brokers", brokers, "--connect-timeout", "4s")
	if code != 1 || !strings.Contains(stderr, "cannot reach Kafka at "+brokers) || strings.Count(stderr, "cannot reach Kafka yet") < 2 {
		t.Fatalf("run with the broker down: exit %d, want 1 with a line per attempt and a clear error:\n%s", code, stderr)
	}

	run := start(t, "run", dir, nil, "run", "--brokers", brokers, "--connect-timeout", "0")
	run.waitLog("cannot reach Kafka yet", 3, 30*time.Second)
	startBroker(t, "broker", dir, port)
	run.waitLog("stage ready", 1, 60*time.Second)
	run.stop(30 * time.Second)
}
