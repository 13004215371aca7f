package main_test

import (
	"strings"
	"testing"
	"time"
)

func TestProduce_priority_sends_to_the_named_priority_topic(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "pipelines.yaml", `version: 1
pipelines:
  - name: rush
    input: rush.in
    partitions: 2
    priority:
      - {topic: rush.high, weight: 8, name: high}
      - {topic: rush.low}
    stages:
      - {name: work, filter: log}
`)
	// An unknown priority is bad usage, found before any broker is reached.
	_, stderr, code := cli(t, dir, "{}\n", "produce", "--brokers", "127.0.0.1:1", "--pipeline", "rush", "--priority", "urgent")
	if code != 2 || !strings.Contains(stderr, `--priority "urgent": pipeline "rush" has no such priority topic (names: high, rush.in, rush.low)`) {
		t.Fatalf("unknown priority: exit %d, stderr:\n%s", code, stderr)
	}

	_, backend := startBroker(t, "broker", dir, freePort(t))
	brokers := backend.Brokers[0]
	for _, tt := range []struct{ priority, topic, lines string }{
		{"high", "rush.high", "{\"n\":1}\n{\"n\":2}\n"},
		{"rush.low", "rush.low", "{\"n\":3}\n"}, // by topic
	} {
		out, stderr, code := cli(t, dir, tt.lines, "produce", "--brokers", brokers, "--pipeline", "rush",
			"--priority", tt.priority, "--key", "k")
		n := strings.Count(tt.lines, "\n")
		if code != 0 || !strings.Contains(out, "to "+tt.topic) {
			t.Fatalf("produce --priority %s: exit %d\n%s%s", tt.priority, code, out, stderr)
		}
		recs := backend.Read(t, tt.topic, n, 30*time.Second)
		var got []string
		for _, r := range recs {
			got = append(got, string(r.Value))
		}
		if want := strings.Split(strings.TrimSpace(tt.lines), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("%s holds %q, want %q", tt.topic, got, want)
		}
	}
	if got := len(backend.ReadAll(t, "rush.high")); got != 2 {
		t.Fatalf("rush.high holds %d records, want 2", got)
	}
}
