package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/millrace/millrace/testkit"
)

func runTests(m *testing.M) int { return testkit.MainCode(m) }

func TestValidate_reports_each_problem_and_exits_1(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "bad.yaml", `version: 1
pipelines:
  - name: orders
    input: orders
    retries: 3
    stages:
      - name: check
        filter: jq
        config: {program: .}
      - name: ship
        filter: teleport
      - name: check
        filter: log
`)
	_, stderr, code := cli(t, dir, "", "validate", "-f", "bad.yaml")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
	}
	want := []string{
		`bad.yaml:5:5: unknown key "retries" in pipeline`,
		`bad.yaml:11:17: pipeline "orders" stage "ship": unknown filter "teleport"`,
		`bad.yaml:12:15: pipeline "orders": duplicate stage name "check"`,
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) != len(want)+1 {
		t.Fatalf("want %d problem lines and a summary, got:\n%s", len(want), stderr)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d:\n got  %s\n want %s…", i+1, lines[i], w)
		}
	}
	out, stderr, code := cli(t, ".", "", "validate", "-f", "../../pipelines.yaml")
	if code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("example pipelines.yaml: exit %d\n%s%s", code, out, stderr)
	}
}

func TestRun_two_processes_split_a_stage_and_lose_nothing(t *testing.T) {
	dir := t.TempDir()
	_, backend := startBroker(t, "broker", dir, freePort(t))
	brokers := backend.Brokers[0]
	writeFile(t, dir, "pipelines.yaml", `version: 1
pipelines:
  - name: split
    input: split.in
    output: split.out
    partitions: 4
    stages:
      - name: work
        filter: exec
        config:
          command: [sh, -c, 'printf "%s " "$WORKER_ID"; cat']
          inherit_env: [PATH, WORKER_ID]
`)
	a := start(t, "worker a", dir, []string{"WORKER_ID=a"}, "run", "--brokers", brokers, "--stage", "split/work")
	a.waitLog("stage ready", 1, 60*time.Second)
	b := start(t, "worker b", dir, []string{"WORKER_ID=b"}, "run", "--brokers", brokers, "--stage", "split/work")
	b.waitLog("stage ready", 1, 60*time.Second)
	waitGroupMembers(t, backend, "millrace.split.work", 2)

	const n = 2000
	var lines strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&lines, `{"seq":%d,"k":"k%d"}`+"\n", i, i)
	}
	out, stderr, code := cli(t, dir, lines.String(), "produce", "--brokers", brokers, "--pipeline", "split", "--key-jq", ".k")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("sent %d records to split.in", n)) {
		t.Fatalf("produce: exit %d\n%s%s", code, out, stderr)
	}
	recs := backend.Read(t, "split.out", n, 2*time.Minute)
	seen := map[int]int{}
	workers := map[string]int{}
	for _, r := range recs {
		worker, payload, _ := strings.Cut(string(r.Value), " ")
		var v struct {
			Seq int `json:"seq"`
		}
		if err := json.Unmarshal([]byte(payload), &v); err != nil {
			t.Fatalf("output is not a worker name and JSON: %s", r.Value)
		}
		seen[v.Seq]++
		workers[worker]++
	}
	for i := 0; i < n; i++ {
		if seen[i] == 0 {
			t.Fatalf("record %d was lost", i)
		}
	}
	if workers["a"] == 0 || workers["b"] == 0 {
		t.Fatalf("both processes should have worked, got %v", workers)
	}
	t.Logf("%d records, by worker: %v, duplicates: %d", n, workers, len(recs)-len(seen))
	a.stop(30 * time.Second)
	b.stop(30 * time.Second)
}

// waitGroupMembers waits until the group is stable with n members that
// each own partitions.
func waitGroupMembers(t *testing.T, b testkit.Backend, group string, n int) {
	t.Helper()
	admin := b.Admin(t)
	testkit.Eventually(t, 60*time.Second, func() bool {
		ds, err := admin.DescribeConsumerGroups([]string{group})
		if err != nil || len(ds) != 1 || ds[0].State != "Stable" || len(ds[0].Members) != n {
			return false
		}
		for _, m := range ds[0].Members {
			a, err := m.GetMemberAssignment()
			if err != nil || a == nil || len(a.Topics) == 0 {
				return false
			}
		}
		return true
	}, "group %s never became stable with %d members owning partitions", group, n)
}

func TestRun_restart_processes_what_was_produced_while_stopped(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	brokers := fmt.Sprintf("127.0.0.1:%d", port)
	writeFile(t, dir, "pipelines.yaml", `version: 1
pipelines:
  - name: restart
    input: restart.in
    output: restart.out
    partitions: 2
    stages:
      - {name: tag, filter: jq, config: {program: '.done = true'}}
`)
	produce := func(from, to int) {
		var lines strings.Builder
		for i := from; i < to; i++ {
			fmt.Fprintf(&lines, `{"seq":%d}`+"\n", i)
		}
		out, stderr, code := cli(t, dir, lines.String(), "produce", "--brokers", brokers, "--pipeline", "restart")
		if code != 0 {
			t.Fatalf("produce: exit %d\n%s%s", code, out, stderr)
		}
	}
	backend := testkit.Backend{Name: "embedded", Brokers: []string{brokers}}

	// 1. millrace run with its own embedded broker: process 100 records.
	run1 := start(t, "run 1", dir, nil, "run", "--embedded-port", fmt.Sprint(port))
	run1.waitLog("stage ready", 1, 60*time.Second)
	produce(0, 100)
	backend.Read(t, "restart.out", 100, time.Minute)
	run1.stop(30 * time.Second)

	// 2. A separate broker on the same data: what was there survived, and
	// records produced while no stage runs wait for it.
	broker, _ := startBroker(t, "broker", dir, port)
	if got := len(backend.ReadAll(t, "restart.out")); got != 100 {
		t.Fatalf("after the broker restart the output holds %d records, want 100", got)
	}
	produce(100, 150)
	run2 := start(t, "run 2", dir, nil, "run", "--brokers", brokers)
	run2.waitLog("stage ready", 1, 60*time.Second)
	backend.Read(t, "restart.out", 150, time.Minute)
	testkit.Eventually(t, 30*time.Second, func() bool {
		return backend.GroupLag(t, "millrace.restart.tag", "restart.in") == 0
	}, "stage did not commit its input")
	run2.stop(30 * time.Second)
	broker.stop(30 * time.Second)

	// A graceful stop committed everything: each record came out once.
	seen := map[string]bool{}
	_, again := startBroker(t, "broker again", dir, port)
	for _, r := range again.ReadAll(t, "restart.out") {
		if seen[string(r.Value)] {
			t.Fatalf("record %s came out twice", r.Value)
		}
		seen[string(r.Value)] = true
	}
	if len(seen) != 150 {
		t.Fatalf("output holds %d distinct records, want 150", len(seen))
	}
}

func TestRun_kill_9_mid_stream_loses_nothing(t *testing.T) {
	dir := t.TempDir()
	_, backend := startBroker(t, "broker", dir, freePort(t))
	if dups := killMidStream(t, dir, backend, 50000, "", false); dups == 0 {
		t.Log("no duplicates this time (the kill landed right after a commit)")
	}
}

// With dedup on, a pipeline killed with SIGKILL mid-stream and restarted
// delivers every record exactly once: whether the process killed runs the
// dedup stage itself (its restore finds outputs whose keys were not
// recorded yet) or only the stage upstream of it (dedup drops what that
// stage redelivers).
func TestRun_kill_9_with_dedup_delivers_exactly_once(t *testing.T) {
	for _, tc := range []struct {
		name  string
		split bool
	}{{"dedup stage killed", false}, {"upstream stage killed", true}} {
		t.Run(tc.name, func(t *testing.T) {
			testkit.ForEachBackend(t, func(t *testing.T, backend testkit.Backend) {
				dir := t.TempDir()
				if backend.Name == "embedded" {
					_, backend = startBroker(t, "broker", dir, freePort(t))
				}
				if dups := killMidStream(t, dir, backend, 20000, "dedup: {key: .seq}", tc.split); dups != 0 {
					t.Fatalf("%d duplicates with dedup on, want none", dups)
				}
			})
		})
	}
}

// killMidStream runs a two-stage pipeline (the second with policy) in a
// process, kills it with SIGKILL once some records are out, restarts it,
// checks every record arrived through both stages and returns how many
// arrived more than once. With split, the second stage runs in a process
// of its own that is not killed.
func killMidStream(t *testing.T, dir string, backend testkit.Backend, n int, policy string, split bool) int {
	t.Helper()
	brokers := strings.Join(backend.Brokers, ",")
	name := "crash-" + testkit.Unique()
	writeFile(t, dir, "pipelines.yaml", fmt.Sprintf(`version: 1
pipelines:
  - name: %[1]s
    input: %[1]s.in
    output: %[1]s.out
    partitions: 4
    stages:
      - {name: one, filter: jq, config: {program: '.one = true'}}
      - {name: two, filter: jq, config: {program: '.two = true'}, %[2]s}
`, name, policy))
	var lines strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&lines, `{"seq":%d,"k":"k%d"}`+"\n", i, i%100)
	}
	if out, stderr, code := cli(t, dir, lines.String(), "produce", "--brokers", brokers, "--pipeline", name, "--key-jq", ".k"); code != 0 {
		t.Fatalf("produce: exit %d\n%s%s", code, out, stderr)
	}
	args, ready := []string{"run", "--brokers", brokers}, 2
	if split {
		second := start(t, "second stage", dir, nil, "run", "--brokers", brokers, "--stage", name+"/two")
		second.waitLog("stage ready", 1, 60*time.Second)
		defer second.stop(30 * time.Second)
		args, ready = append(args, "--stage", name+"/one"), 1
	}
	run1 := start(t, "run 1", dir, nil, args...)
	run1.waitLog("stage ready", ready, 60*time.Second)
	// Kill it once some, but not all, of the records came out.
	client := backend.Client(t)
	outCount := func() int64 {
		var total int64
		parts, _ := client.Partitions(name + ".out")
		for _, p := range parts {
			end, _ := client.GetOffset(name+".out", p, -1)
			total += end
		}
		return total
	}
	testkit.Eventually(t, time.Minute, func() bool { _ = client.RefreshMetadata(name + ".out"); return outCount() > int64(n/10) },
		"no output before the kill")
	if err := run1.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-run1.done
	killedAt := outCount()
	if killedAt >= int64(n) {
		t.Fatalf("all %d records were through before the kill; the test proves nothing", n)
	}
	run2 := start(t, "run 2", dir, nil, args...)
	run2.waitLog("stage ready", ready, 60*time.Second)
	// Wait until both stages committed everything, then read all the output.
	testkit.Eventually(t, 2*time.Minute, func() bool {
		return backend.GroupLag(t, "millrace."+name+".one", name+".in") == 0 &&
			backend.GroupLag(t, "millrace."+name+".two", name+".two") == 0
	}, "the stages did not catch up")
	recs := backend.ReadAll(t, name+".out")
	seen := map[int]bool{}
	for _, r := range recs {
		var v struct {
			Seq int  `json:"seq"`
			One bool `json:"one"`
			Two bool `json:"two"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil || !v.One || !v.Two {
			t.Fatalf("output is not JSON that went through both stages: %s", r.Value)
		}
		seen[v.Seq] = true
	}
	for i := 0; i < n; i++ {
		if !seen[i] {
			t.Fatalf("record %d was lost", i)
		}
	}
	if split {
		if mid := len(backend.ReadAll(t, name+".two")); mid <= n {
			t.Fatalf("the kill left no duplicates between the stages (%d records for %d inputs); the test proves nothing", mid, n)
		}
	}
	dups := len(recs) - len(seen)
	t.Logf("%s: killed with %d of %d records out; after restart all arrived, %d duplicates", backend.Name, killedAt, n, dups)
	run2.stop(30 * time.Second)
	return dups
}

func TestFiltersDocs_match_docs_filters_md(t *testing.T) {
	out, stderr, code := cli(t, ".", "", "filters", "docs")
	if code != 0 {
		t.Fatalf("filters docs: exit %d: %s", code, stderr)
	}
	want, err := os.ReadFile("../../docs/filters.md")
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Fatal("docs/filters.md is out of date: regenerate it with `bin/millrace filters docs > docs/filters.md`")
	}
}
