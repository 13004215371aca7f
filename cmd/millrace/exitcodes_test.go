package main_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
)

// TestExitCodes_are_2_for_bad_usage_1_for_failures_0_for_success runs
// every command: with bad usage it exits 2 with one line that names the
// flag (or argument) of that command, before any broker is contacted (the
// brokers given do not exist); failures exit 1, successes 0.
func TestExitCodes_are_2_for_bad_usage_1_for_failures_0_for_success(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "pipelines.yaml", `version: 1
pipelines:
  - name: jobs
    input: jobs.in
    output: jobs.out
    partitions: 2
    stages:
      - {name: tag, filter: jq, config: {program: '.tag = 1'}}
      - {name: log, filter: log}
`)
	writeFile(t, dir, "bad.yaml", "version: 1\npipelines: [~]\n")
	down := "127.0.0.1:1" // nothing listens there
	usage := []struct {
		args []string
		flag string // what the message must name
	}{
		{[]string{"run", "--stage", "nope/x"}, `--stage: no stage "nope/x"`},
		{[]string{"run", "--embedded-port", "99999"}, "--embedded-port 99999"},
		{[]string{"run", "--log-level", "loud"}, `--log-level "loud"`},
		{[]string{"broker", "--port", "99999"}, "--port 99999"},
		{[]string{"broker", "--log-level", "loud"}, `--log-level "loud"`},
		{[]string{"validate", "--log-level", "loud"}, `--log-level "loud"`},
		{[]string{"validate", "extra"}, `unknown command "extra"`},
		{[]string{"produce", "--pipeline", "nope"}, `--pipeline: no pipeline "nope"`},
		{[]string{"produce", "--pipeline", "jobs", "--key", "k", "--key-jq", ".k"}, "--key or --key-jq"},
		{[]string{"produce", "--pipeline", "jobs", "--key-jq", "{"}, "--key-jq"},
		{[]string{"produce", "--pipeline", "jobs", "-H", "nameonly"}, "--header"},
		{[]string{"produce"}, "--pipeline is required"},
		{[]string{"tail"}, "TOPIC"},
		{[]string{"tail", "jobs.out", "-n", "-3"}, "--limit -3"},
		{[]string{"tail", "jobs.out", "--log-format", "xml"}, `--log-format "xml"`},
		{[]string{"filters"}, "subcommand"},
		{[]string{"filters", "list", "--log-level", "loud"}, `--log-level "loud"`},
		{[]string{"filters", "docs", "teleport"}, `no filter "teleport"`},
		{[]string{"quarantine", "ls", "--pipeline", "nope"}, `--pipeline: no pipeline "nope"`},
		{[]string{"quarantine", "show", "--pipeline", "jobs", "--match", "("}, "--match"},
		{[]string{"replay", "offsets", "--pipeline", "jobs", "--stage", "nope", "--to-earliest"}, `--stage: pipeline "jobs" has no stage "nope"`},
		{[]string{"replay", "offsets", "--pipeline", "jobs", "--stage", "tag"}, "--to-time"},
		{[]string{"replay", "quarantine", "--pipeline", "jobs", "--stage", "nope"}, `--stage: pipeline "jobs" has no stage "nope"`},
		{[]string{"replay", "quarantine", "--pipeline", "jobs", "--rate", "fast"}, "--rate"},
		{[]string{"replay", "topic", "--from", "a", "--to", "a"}, "--from and --to"},
		{[]string{"replay", "topic", "--from", "a", "--to", "b", "--since", "soon"}, "--since"},
		{[]string{"nope"}, `unknown command "nope"`},
	}
	for _, tt := range usage {
		t.Run("usage/"+strings.Join(tt.args, " "), func(t *testing.T) {
			out, stderr, code := cli(t, dir, "{}\n", append(tt.args, "--brokers", down)...)
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if code != 2 || len(lines) != 1 || !strings.Contains(lines[0], tt.flag) || out != "" {
				t.Fatalf("exit %d, stdout %q, stderr:\n%s\nwant exit 2 and one line naming %q", code, out, stderr, tt.flag)
			}
		})
	}

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := fmt.Sprint(busy.Addr().(*net.TCPAddr).Port)
	failures := []struct {
		args []string
		want string
	}{
		{[]string{"validate", "-f", "bad.yaml"}, "bad.yaml: 1 problem"},
		{[]string{"validate", "-f", "missing.yaml"}, "missing.yaml"},
		{[]string{"broker", "--port", busyPort, "--data-dir", dir + "/b1"}, "pick another port with --port)"},
		{[]string{"run", "--embedded-port", busyPort, "--data-dir", dir + "/b2"}, "pick another port with --embedded-port)"},
		{[]string{"produce", "--pipeline", "jobs", "--brokers", down, "--connect-timeout", "1ms"}, "cannot reach Kafka"},
		{[]string{"tail", "jobs.out", "--brokers", down, "--connect-timeout", "1ms"}, "cannot reach Kafka"},
		{[]string{"quarantine", "ls", "--pipeline", "jobs", "--brokers", down, "--connect-timeout", "1ms"}, "cannot reach Kafka"},
		{[]string{"replay", "offsets", "--pipeline", "jobs", "--stage", "tag", "--to-earliest", "--brokers", down, "--connect-timeout", "1ms"}, "cannot reach Kafka"},
	}
	for _, tt := range failures {
		t.Run("failure/"+strings.Join(tt.args, " "), func(t *testing.T) {
			_, stderr, code := cli(t, dir, "{}\n", tt.args...)
			if code != 1 || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit 1 and %q", code, stderr, tt.want)
			}
		})
	}

	_, backend := startBroker(t, "broker", dir, freePort(t))
	brokers := backend.Brokers[0]
	// Its data directory (.millrace/broker, the default) is taken now.
	if _, stderr, code := cli(t, dir, "", "broker", "--port", "0"); code != 1 || !strings.Contains(stderr, "pick another directory with --data-dir)") {
		t.Fatalf("broker on a data directory in use: exit %d, want 1 naming --data-dir:\n%s", code, stderr)
	}
	// run, on the default port, is told first to use the broker there.
	if _, stderr, code := cli(t, dir, "", "run", "--stage", "jobs/tag"); code != 1 ||
		!strings.Contains(stderr, "use that broker with --brokers 127.0.0.1:9092 if it listens there") {
		t.Fatalf("run with the embedded broker's data directory in use: exit %d, want 1 advising --brokers:\n%s", code, stderr)
	}
	successes := [][]string{
		{"validate"},
		{"filters", "list"},
		{"filters", "docs", "jq"},
		{"--help"},
		{"tail", "--help"},
		{"produce", "--pipeline", "jobs", "--key-jq", ".id", "--brokers", brokers},
		{"tail", "jobs.in", "--from-beginning", "--exit", "--brokers", brokers},
		{"quarantine", "ls", "--pipeline", "jobs", "--brokers", brokers},
		{"quarantine", "show", "--pipeline", "jobs", "--brokers", brokers},
		{"replay", "quarantine", "--pipeline", "jobs", "--dry-run", "--brokers", brokers},
		{"replay", "offsets", "--pipeline", "jobs", "--stage", "tag", "--to-earliest", "--brokers", brokers},
		{"replay", "topic", "--from", "jobs.in", "--to", "jobs.in.copy", "--dry-run", "--brokers", brokers},
	}
	backend.CreateTopic(t, "jobs.in.copy", 1)
	backend.CreateTopic(t, "jobs.quarantine", 1)
	for _, args := range successes {
		t.Run("success/"+strings.Join(args, " "), func(t *testing.T) {
			out, stderr, code := cli(t, dir, "{\"id\":1}\n", args...)
			if code != 0 {
				t.Fatalf("exit %d\n%s%s", code, out, stderr)
			}
		})
	}
}
