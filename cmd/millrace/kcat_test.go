package main_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/millrace/millrace/testkit"
)

// kcat returns the path of kcat, an independent Kafka client (librdkafka).
// `make test` installs it; without it the test is skipped, except in CI.
func kcat(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("kcat is required under CI=true (apt-get install kcat; make test does it)")
		}
		t.Skip("SKIPPING: kcat is not installed (apt-get install kcat)")
	}
	return path
}

// TestRun_driven_only_through_kcat feeds a running `millrace run` with kcat
// and reads its output with kcat: no millrace code touches the records on
// the way in or out.
func TestRun_driven_only_through_kcat(t *testing.T) {
	kc := kcat(t)
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		dir := t.TempDir()
		name := "kcat-" + testkit.Unique()
		writeFile(t, dir, "pipelines.yaml", fmt.Sprintf(`version: 1
defaults: {partitions: 3}
pipelines:
  - name: %[1]s
    input: %[1]s.in
    output: %[1]s.out
    stages:
      - {name: double, filter: jq, config: {program: '{id, doubled: (.n * 2)}'}}
      - {name: label, filter: jq, config: {program: '.label = "k=" + $key'}}
`, name))
		brokers := strings.Join(b.Brokers, ",")
		run := start(t, "millrace run", dir, nil, "run", "--brokers", brokers)
		run.waitLog("stage ready", 2, 60*time.Second)

		const n = 300
		var in strings.Builder
		want := make([]string, 0, n)
		for i := 0; i < n; i++ {
			key := fmt.Sprintf("user-%d", i%7)
			fmt.Fprintf(&in, "%s:{\"id\":%d,\"n\":%d}\n", key, i, i+1)
			want = append(want, fmt.Sprintf(`%s:{"doubled":%d,"id":%d,"label":"k=%s"}`, key, 2*(i+1), i, key))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		produce := exec.CommandContext(ctx, kc, "-P", "-b", brokers, "-t", name+".in", "-K:")
		produce.Stdin = strings.NewReader(in.String())
		if out, err := produce.CombinedOutput(); err != nil {
			t.Fatalf("kcat -P: %v\n%s", err, out)
		}
		consume := exec.CommandContext(ctx, kc, "-C", "-b", brokers, "-t", name+".out",
			"-o", "beginning", "-c", fmt.Sprint(n), "-K:", "-q")
		out, err := consume.Output()
		if err != nil {
			t.Fatalf("kcat -C: %v (read %d lines)", err, strings.Count(string(out), "\n"))
		}
		got := strings.Split(strings.TrimSpace(string(out)), "\n")
		sort.Strings(got)
		sort.Strings(want)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("kcat read %d records that differ from the %d expected; first got %q, first want %q",
				len(got), len(want), got[0], want[0])
		}
		run.stop(30 * time.Second)
	})
}
