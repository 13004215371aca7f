package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/testkit"
	"github.com/millrace/millrace/testkit/realkafka"
	"github.com/millrace/millrace/transport"
)

// produceTimed sends records {"seq":i} for i in [from, to) to topic, keyed
// k<i%7>, record i stamped base + i seconds.
func produceTimed(t *testing.T, b testkit.Backend, topic string, from, to int, base time.Time) {
	t.Helper()
	p, err := sarama.NewSyncProducer(b.Brokers, transport.NewProducerConfig("replay-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var msgs []*sarama.ProducerMessage
	for i := from; i < to; i++ {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprintf("k%d", i%7)),
			Value: sarama.StringEncoder(fmt.Sprintf(`{"seq":%d}`, i)), Timestamp: base.Add(time.Duration(i) * time.Second),
			Headers: []sarama.RecordHeader{{Key: []byte("x-seq"), Value: []byte(strconv.Itoa(i))}}})
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
}

// kafkaTool runs a Kafka CLI main class against real Kafka: on the broker
// testkit started, or with the cached jars when $KAFKA_BROKERS names one.
func kafkaTool(t *testing.T, mainClass string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if br := testkit.SharedRealKafka(); br != nil {
		out, err := br.RunTool(ctx, mainClass, args...)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	libs, _, err := realkafka.Fetch(ctx, realkafka.Options{})
	if err != nil {
		t.Skipf("SKIPPING: no Kafka tools: %v", err)
	}
	cmd := exec.CommandContext(ctx, "java", append([]string{"-Xmx256m", "-cp", filepath.Join(libs, "*"), mainClass}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", mainClass, args, err, out)
	}
	return string(out)
}

// kafkaResetPlan runs Kafka's ConsumerGroupCommand --reset-offsets
// --dry-run and returns its NEW-OFFSET per partition of topic.
func kafkaResetPlan(t *testing.T, b testkit.Backend, group, topic string, args ...string) map[int32]int64 {
	t.Helper()
	argv := append([]string{"--bootstrap-server", strings.Join(b.Brokers, ","), "--group", group, "--topic", topic,
		"--reset-offsets", "--dry-run"}, args...)
	out := kafkaTool(t, "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", argv...)
	plan := map[int32]int64{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 4 && f[0] == group && f[1] == topic {
			p, err1 := strconv.Atoi(f[2])
			o, err2 := strconv.ParseInt(f[3], 10, 64)
			if err1 != nil || err2 != nil {
				t.Fatalf("cannot read Kafka's plan line %q", line)
			}
			plan[int32(p)] = o
		}
	}
	if len(plan) == 0 {
		t.Fatalf("Kafka's tool printed no plan for %v:\n%s", args, out)
	}
	return plan
}

type offsetsJSON struct {
	Group      string `json:"group"`
	Executed   bool   `json:"executed"`
	Reprocess  int64  `json:"reprocess"`
	Partitions []struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Current   int64  `json:"current"`
		Target    int64  `json:"target"`
		Reprocess int64  `json:"reprocess"`
	} `json:"partitions"`
}

func replayOffsets(t *testing.T, dir string, b testkit.Backend, args ...string) offsetsJSON {
	t.Helper()
	argv := append([]string{"replay", "offsets", "--brokers", strings.Join(b.Brokers, ","), "--json"}, args...)
	out, stderr, code := cli(t, dir, "", argv...)
	if code != 0 {
		t.Fatalf("millrace %s: exit %d\n%s%s", strings.Join(argv, " "), code, out, stderr)
	}
	var r offsetsJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("replay offsets --json printed %q: %v", out, err)
	}
	return r
}

func singleStagePipeline(name string, partitions int) string {
	return fmt.Sprintf(`version: 1
pipelines:
  - name: %[1]s
    input: %[1]s.in
    output: %[1]s.out
    partitions: %[2]d
    stages:
      - {name: tag, filter: jq, config: {program: '.tagged = true'}}
`, name, partitions)
}

// TestReplayOffsets_plan_matches_kafka_consumer_groups_tool compares the
// plan of `millrace replay offsets` with the one Kafka's own
// ConsumerGroupCommand --reset-offsets --dry-run prints for the same group.
func TestReplayOffsets_plan_matches_kafka_consumer_groups_tool(t *testing.T) {
	b := testkit.RealKafka(t)
	t.Setenv("TZ", "UTC") // Kafka's tool reads a time without a zone in the JVM's zone
	dir := t.TempDir()
	name := "rewind-" + testkit.Unique()
	writeFile(t, dir, "pipelines.yaml", singleStagePipeline(name, 3))
	topic, group := name+".in", "millrace."+name+".tag"
	b.CreateTopic(t, topic, 3)
	base := time.Now().UTC().Truncate(time.Second).Add(-30 * time.Minute)
	produceTimed(t, b, topic, 0, 90, base)
	client := b.Client(t)
	commits := map[int32]int64{}
	for p := int32(0); p < 3; p++ {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		commits[p] = end / int64(p+2)
	}
	if err := kafkaops.CommitOffsets(client, group, map[string]map[int32]int64{topic: commits}); err != nil {
		t.Fatal(err)
	}
	at := base.Add(40*time.Second + 500*time.Millisecond)
	const kafkaTime = "2006-01-02T15:04:05.000"
	cases := []struct{ ours, kafkas []string }{
		{[]string{"--to-time", at.Format(kafkaTime)}, []string{"--to-datetime", at.Format(kafkaTime)}},
		{[]string{"--to-time", at.In(time.FixedZone("", 2*3600)).Format(time.RFC3339Nano)},
			[]string{"--to-datetime", at.In(time.FixedZone("", 2*3600)).Format(kafkaTime + "-07:00")}},
		{[]string{"--to-time", base.Add(time.Hour).Format(kafkaTime)}, []string{"--to-datetime", base.Add(time.Hour).Format(kafkaTime)}},
		{[]string{"--to-time", base.Add(-time.Hour).Format(kafkaTime)}, []string{"--to-datetime", base.Add(-time.Hour).Format(kafkaTime)}},
		{[]string{"--to-earliest"}, []string{"--to-earliest"}},
		{[]string{"--to-latest"}, []string{"--to-latest"}},
		{[]string{"--shift-by", "-4"}, []string{"--shift-by", "-4"}},
		{[]string{"--shift-by", "-1000"}, []string{"--shift-by", "-1000"}},
		{[]string{"--shift-by", "7"}, []string{"--shift-by", "7"}},
		{[]string{"--to-offset", "12"}, []string{"--to-offset", "12"}},
	}
	for _, c := range cases {
		ours := replayOffsets(t, dir, b, append([]string{"--pipeline", name, "--stage", "tag"}, c.ours...)...)
		theirs := kafkaResetPlan(t, b, group, topic, c.kafkas...)
		got := map[int32]int64{}
		for _, p := range ours.Partitions {
			got[p.Partition] = p.Target
		}
		if fmt.Sprint(got) != fmt.Sprint(theirs) {
			t.Errorf("%v: millrace plans %v, Kafka's tool plans %v", c.ours, got, theirs)
		} else {
			t.Logf("%v: both plan %v (committed %v)", c.ours, got, commits)
		}
		if ours.Executed {
			t.Fatal("a plan without --execute says it was executed")
		}
	}
	// Nothing was changed by the dry runs.
	after, err := kafkaops.CommittedOffsets(client, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(after) != fmt.Sprint(commits) {
		t.Fatalf("dry runs changed the committed offsets: %v, were %v", after, commits)
	}
}

// TestReplayOffsets_rewinding_a_stopped_stage_reprocesses_from_the_time
// rewinds a stage to a time and checks that exactly the records stamped at
// or after it come out again; while the stage runs the command refuses.
func TestReplayOffsets_rewinding_a_stopped_stage_reprocesses_from_the_time(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		dir := t.TempDir()
		name := "rewind-" + testkit.Unique()
		writeFile(t, dir, "pipelines.yaml", singleStagePipeline(name, 3))
		brokers := strings.Join(b.Brokers, ",")
		b.CreateTopic(t, name+".in", 3)
		const n, from = 60, 37
		base := time.Now().UTC().Truncate(time.Second).Add(-20 * time.Minute)
		produceTimed(t, b, name+".in", 0, n, base)

		run := start(t, "run", dir, nil, "run", "--brokers", brokers)
		run.waitLog("stage ready", 1, 60*time.Second)
		b.Read(t, name+".out", n, time.Minute)
		testkit.Eventually(t, 30*time.Second, func() bool {
			return b.GroupLag(t, "millrace."+name+".tag", name+".in") == 0
		}, "stage did not commit its input")

		at := base.Add(from * time.Second).Format("2006-01-02T15:04:05")
		out, stderr, code := cli(t, dir, "", "replay", "offsets", "--brokers", brokers, "--pipeline", name, "--stage", "tag",
			"--to-time", at, "--execute")
		if code != 1 || !strings.Contains(stderr, "is running") {
			t.Fatalf("replay offsets while the stage runs: exit %d, want 1 with 'is running'\n%s%s", code, out, stderr)
		}
		run.stop(30 * time.Second)

		dry := replayOffsets(t, dir, b, "--pipeline", name, "--stage", "tag", "--to-time", at)
		if dry.Reprocess != n-from || dry.Executed {
			t.Fatalf("dry run plans %d records to reprocess (executed %v), want %d", dry.Reprocess, dry.Executed, n-from)
		}
		if got := b.GroupLag(t, "millrace."+name+".tag", name+".in"); got != 0 {
			t.Fatalf("the dry run moved the offsets: lag %d", got)
		}
		done := replayOffsets(t, dir, b, "--pipeline", name, "--stage", "tag", "--to-time", at, "--execute")
		if done.Reprocess != n-from || !done.Executed {
			t.Fatalf("--execute reports %d records to reprocess (executed %v), want %d", done.Reprocess, done.Executed, n-from)
		}
		if got := b.GroupLag(t, "millrace."+name+".tag", name+".in"); got != n-from {
			t.Fatalf("after the reset the stage's lag is %d, want %d", got, n-from)
		}

		run2 := start(t, "run 2", dir, nil, "run", "--brokers", brokers)
		run2.waitLog("stage ready", 1, 60*time.Second)
		b.Read(t, name+".out", n+(n-from), time.Minute)
		testkit.Eventually(t, 30*time.Second, func() bool {
			return b.GroupLag(t, "millrace."+name+".tag", name+".in") == 0
		}, "stage did not commit its input after the rewind")
		run2.stop(30 * time.Second)
		recs := b.ReadAll(t, name+".out")
		if len(recs) != n+(n-from) {
			t.Fatalf("output holds %d records, want %d (%d, then %d reprocessed)", len(recs), n+(n-from), n, n-from)
		}
		count := map[int]int{}
		for _, r := range recs {
			var v struct{ Seq int }
			if err := json.Unmarshal(r.Value, &v); err != nil {
				t.Fatal(err)
			}
			count[v.Seq]++
		}
		for i := 0; i < n; i++ {
			want := 1
			if i >= from {
				want = 2
			}
			if count[i] != want {
				t.Fatalf("record %d came out %d times, want %d", i, count[i], want)
			}
		}
		t.Logf("%s: rewound to record %d's time; %d records reprocessed, the %d before it were not", b.Name, from, n-from, from)
	})
}

func failingPipeline(name, command string) string {
	return fmt.Sprintf(`version: 1
pipelines:
  - name: %[1]s
    input: %[1]s.in
    output: %[1]s.out
    partitions: 2
    retry: {attempts: 1}
    stages:
      - {name: first, filter: jq, config: {program: '.first = true'}}
      - {name: work, filter: exec, config: {command: [sh, -c, '%[2]s']}}
`, name, command)
}

type replayJSON struct {
	Sent    int            `json:"sent"`
	SentTo  map[string]int `json:"sent_to"`
	Skipped map[string]int `json:"skipped"`
	Failed  map[string]int `json:"failed"`
	DryRun  bool           `json:"dry_run"`
}

func replayQuarantine(t *testing.T, dir string, b testkit.Backend, args ...string) replayJSON {
	t.Helper()
	argv := append([]string{"replay", "quarantine", "--brokers", strings.Join(b.Brokers, ","), "--json"}, args...)
	out, stderr, code := cli(t, dir, "", argv...)
	if code != 0 {
		t.Fatalf("millrace %s: exit %d\n%s%s", strings.Join(argv, " "), code, out, stderr)
	}
	var r replayJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("replay quarantine --json printed %q: %v", out, err)
	}
	return r
}

// TestReplayQuarantine_after_fixing_the_config_sends_each_record_once: a
// misconfigured stage quarantines 100 records; once fixed, the replay
// sends all 100 to the stage, they reach the output, and a second replay
// sends none.
func TestReplayQuarantine_after_fixing_the_config_sends_each_record_once(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		dir := t.TempDir()
		name := "requeue-" + testkit.Unique()
		brokers := strings.Join(b.Brokers, ",")
		writeFile(t, dir, "pipelines.yaml", failingPipeline(name, "echo misconfigured >&2; exit 3"))
		run := start(t, "run", dir, nil, "run", "--brokers", brokers)
		run.waitLog("stage ready", 2, 60*time.Second)
		const n = 100
		var lines strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&lines, `{"seq":%d,"k":"k%d"}`+"\n", i, i%9)
		}
		if out, stderr, code := cli(t, dir, lines.String(), "produce", "--brokers", brokers, "--pipeline", name, "--key-jq", ".k"); code != 0 {
			t.Fatalf("produce: exit %d\n%s%s", code, out, stderr)
		}
		b.Read(t, name+".quarantine", n, time.Minute)
		run.stop(30 * time.Second)

		out, stderr, code := cli(t, dir, "", "quarantine", "ls", "--brokers", brokers, "--pipeline", name, "--json")
		var ls struct {
			Total  int `json:"total"`
			Errors []struct {
				Stage, Error string
				Count        int
				FirstFailure string `json:"first_failure"`
				LastFailure  string `json:"last_failure"`
			} `json:"errors"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &ls) != nil {
			t.Fatalf("quarantine ls: exit %d\n%s%s", code, out, stderr)
		}
		if ls.Total != n || len(ls.Errors) != 1 || ls.Errors[0].Stage != "work" || ls.Errors[0].Count != n ||
			ls.Errors[0].FirstFailure == "" || ls.Errors[0].LastFailure < ls.Errors[0].FirstFailure {
			t.Fatalf("quarantine ls: %s", out)
		}
		out, stderr, code = cli(t, dir, "", "quarantine", "show", "--brokers", brokers, "--pipeline", name,
			"--stage", "work", "--match", "exit status 3|misconfigured", "--limit", "3", "--json")
		if code != 0 || strings.Count(out, "\n") != 3 || !strings.Contains(out, `"millrace-error"`) {
			t.Fatalf("quarantine show --limit 3: exit %d\n%s%s", code, out, stderr)
		}
		if out, _, _ := cli(t, dir, "", "quarantine", "show", "--brokers", brokers, "--pipeline", name, "--stage", "first"); !strings.HasPrefix(out, "0 records shown") {
			t.Fatalf("quarantine show --stage first: %s", out)
		}

		writeFile(t, dir, "pipelines.yaml", failingPipeline(name, "cat"))
		if dry := replayQuarantine(t, dir, b, "--pipeline", name, "--dry-run"); dry.Sent != n || !dry.DryRun {
			t.Fatalf("dry run: %+v, want %d to send", dry, n)
		}
		if got := len(b.ReadAll(t, name+".work")); got != n {
			t.Fatalf("the dry run sent records: %s.work holds %d records, want the %d first sent", name, got, n)
		}
		first := replayQuarantine(t, dir, b, "--pipeline", name, "--rate", "1000/s")
		if first.Sent != n || first.SentTo[name+".work"] != n || len(first.Failed) != 0 {
			t.Fatalf("replay: %+v, want %d sent to %s.work", first, n, name)
		}
		replayed := 0
		for _, r := range b.ReadAll(t, name+".work") {
			if r.Headers["millrace-replays"] == "" {
				continue
			}
			replayed++
			for _, h := range []string{"millrace-error", "millrace-attempt", "millrace-origin", "millrace-first-failure", "millrace-last-failure", "millrace-stage"} {
				if r.Headers[h] != "" {
					t.Fatalf("replayed record still has %s: %v", h, r.Headers)
				}
			}
		}
		if replayed != n {
			t.Fatalf("%s.work holds %d replayed records, want %d", name, replayed, n)
		}
		again := replayQuarantine(t, dir, b, "--pipeline", name)
		if again.Sent != 0 || again.Skipped["already replayed"] != n {
			t.Fatalf("second replay: %+v, want 0 sent and %d already replayed", again, n)
		}
		out, stderr, code = cli(t, dir, "", "quarantine", "ls", "--brokers", brokers, "--pipeline", name)
		if want := fmt.Sprintf("%s.quarantine: %d quarantined records, %d replayed, 0 waiting\n", name, n, n); code != 0 || !strings.HasPrefix(out, want) {
			t.Fatalf("quarantine ls after the replay: exit %d\n%s%s\nwant it to start %q", code, out, stderr, want)
		}

		run2 := start(t, "run 2", dir, nil, "run", "--brokers", brokers)
		run2.waitLog("stage ready", 2, 60*time.Second)
		recs := b.Read(t, name+".out", n, time.Minute)
		testkit.Eventually(t, 30*time.Second, func() bool {
			return b.GroupLag(t, "millrace."+name+".work", name+".work") == 0
		}, "the fixed stage did not commit the replayed records")
		run2.stop(30 * time.Second)
		recs = b.ReadAll(t, name+".out")
		seen := map[int]bool{}
		for _, r := range recs {
			var v struct {
				Seq   int
				K     string
				First bool
			}
			if err := json.Unmarshal(r.Value, &v); err != nil || !v.First {
				t.Fatalf("output %s is not the first stage's output", r.Value)
			}
			if string(r.Key) != v.K || r.Headers["millrace-replays"] != "1" || r.Headers["millrace-error"] != "" ||
				r.Headers["millrace-job"] == "" {
				t.Fatalf("output record key %q headers %v: want the key %q, millrace-replays 1, the job id and no failure headers",
					r.Key, r.Headers, v.K)
			}
			seen[v.Seq] = true
		}
		if len(recs) != n || len(seen) != n {
			t.Fatalf("output holds %d records (%d distinct), want %d", len(recs), len(seen), n)
		}
		t.Logf("%s: %d quarantined, %d replayed and processed, second replay sent 0", b.Name, n, first.Sent)
	})
}

// TestReplayQuarantine_stops_replaying_a_record_that_keeps_failing
func TestReplayQuarantine_stops_replaying_a_record_that_keeps_failing(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		dir := t.TempDir()
		name := "poison-" + testkit.Unique()
		brokers := strings.Join(b.Brokers, ",")
		writeFile(t, dir, "pipelines.yaml", failingPipeline(name, "exit 4"))
		run := start(t, "run", dir, nil, "run", "--brokers", brokers)
		run.waitLog("stage ready", 2, 60*time.Second)
		if out, stderr, code := cli(t, dir, `{"poison":true}`+"\n", "produce", "--brokers", brokers, "--pipeline", name, "--key", "p"); code != 0 {
			t.Fatalf("produce: exit %d\n%s%s", code, out, stderr)
		}
		b.Read(t, name+".quarantine", 1, time.Minute)
		for i := 1; i <= 2; i++ {
			r := replayQuarantine(t, dir, b, "--pipeline", name, "--max-replays", "2")
			if r.Sent != 1 {
				t.Fatalf("replay %d: %+v, want 1 sent", i, r)
			}
			recs := b.Read(t, name+".quarantine", i+1, time.Minute)
			if got := recs[len(recs)-1].Headers["millrace-replays"]; got != fmt.Sprint(i) {
				t.Fatalf("after replay %d the record is back in quarantine with millrace-replays %q", i, got)
			}
		}
		r := replayQuarantine(t, dir, b, "--pipeline", name, "--max-replays", "2")
		if r.Sent != 0 || r.Skipped["max replays reached"] != 1 || r.Skipped["already replayed"] != 2 {
			t.Fatalf("third replay: %+v, want 0 sent, 1 at max replays, 2 already replayed", r)
		}
		run.stop(30 * time.Second)
		if got := len(b.ReadAll(t, name+".quarantine")); got != 3 {
			t.Fatalf("quarantine holds %d records, want 3 (the failure and 2 replays)", got)
		}
	})
}

// TestReplayTopic_copies_exactly_the_time_range: 60 records one second
// apart; copying [record 20, record 45) copies exactly those 25, with their
// keys and headers, and --dry-run copies nothing.
func TestReplayTopic_copies_exactly_the_time_range(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		dir := t.TempDir()
		name := "refeed-" + testkit.Unique()
		from, to := name+".backup", name+".in"
		b.CreateTopic(t, from, 3)
		b.CreateTopic(t, to, 3)
		base := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
		produceTimed(t, b, from, 0, 60, base)
		at := func(i int) string { return base.Add(time.Duration(i) * time.Second).Format("2006-01-02T15:04:05") }
		copyTopic := func(extra ...string) map[string]any {
			argv := append([]string{"replay", "topic", "--brokers", strings.Join(b.Brokers, ","), "--json",
				"--from", from, "--to", to, "--since", at(20), "--until", at(45)}, extra...)
			out, stderr, code := cli(t, dir, "", argv...)
			if code != 0 {
				t.Fatalf("millrace %s: exit %d\n%s%s", strings.Join(argv, " "), code, out, stderr)
			}
			var r map[string]any
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("replay topic --json printed %q: %v", out, err)
			}
			return r
		}
		if r := copyTopic("--dry-run"); r["copied"] != float64(25) {
			t.Fatalf("dry run would copy %v records, want 25", r["copied"])
		}
		if n := len(b.ReadAll(t, to)); n != 0 {
			t.Fatalf("dry run copied %d records", n)
		}
		if r := copyTopic(); r["copied"] != float64(25) {
			t.Fatalf("copied %v records, want 25", r["copied"])
		}
		got := b.Read(t, to, 25, 30*time.Second)
		seqs := map[int]bool{}
		for _, r := range got {
			var v struct{ Seq int }
			if err := json.Unmarshal(r.Value, &v); err != nil {
				t.Fatal(err)
			}
			if v.Seq < 20 || v.Seq >= 45 || seqs[v.Seq] {
				t.Fatalf("copied seq %d: outside [20, 45) or twice", v.Seq)
			}
			seqs[v.Seq] = true
			if string(r.Key) != fmt.Sprintf("k%d", v.Seq%7) || r.Headers["x-seq"] != strconv.Itoa(v.Seq) {
				t.Fatalf("seq %d copied with key %q headers %v", v.Seq, r.Key, r.Headers)
			}
		}
		if n := len(b.ReadAll(t, to)); n != 25 || len(seqs) != 25 {
			t.Fatalf("%s holds %d records (%d distinct), want exactly 25", to, n, len(seqs))
		}
		// A topic is never copied into itself.
		if _, stderr, code := cli(t, dir, "", "replay", "topic", "--brokers", strings.Join(b.Brokers, ","),
			"--from", from, "--to", from); code != 2 || !strings.Contains(stderr, "grows for ever") {
			t.Fatalf("--from = --to: exit %d, %s", code, stderr)
		}
	})
}

// A record quarantined as an envelope (too large to quarantine whole: its
// payload truncated, millrace-truncated set) is never replayed: replaying
// it would feed the stage a cut payload. It counts as a failure (exit 1)
// saying why, and the whole records beside it are replayed.
func TestReplayQuarantine_refuses_an_envelope(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		dir := t.TempDir()
		name := "envelope-" + testkit.Unique()
		writeFile(t, dir, "pipelines.yaml", failingPipeline(name, "exit 4"))
		b.CreateTopic(t, name+".quarantine", 1)
		b.CreateTopic(t, name+".work", 2)
		b.Produce(t, name+".quarantine", []testkit.Record{
			{Key: []byte("a"), Value: []byte(`{"cut":`), HeaderList: filters.HeadersOf("millrace-stage", "work",
				"millrace-error", "too large", "millrace-truncated", "payload=2000000 key=1 headers=0")},
			{Key: []byte("b"), Value: []byte(`{"whole":true}`), HeaderList: filters.HeadersOf("millrace-stage", "work",
				"millrace-error", "exit 4")},
		})
		argv := []string{"replay", "quarantine", "--brokers", strings.Join(b.Brokers, ","), "--json", "--pipeline", name}
		out, stderr, code := cli(t, dir, "", argv...)
		var r replayJSON
		if err := json.Unmarshal([]byte(out), &r); err != nil || code != 1 {
			t.Fatalf("replay quarantine: exit %d, want 1; printed %q (%v)\n%s", code, out, err, stderr)
		}
		if r.Sent != 1 || len(r.Failed) != 1 || !strings.Contains(fmt.Sprint(r.Failed), "truncated") {
			t.Fatalf("replay: %+v, want the whole record sent and the envelope failed as truncated", r)
		}
		if got := b.ReadAll(t, name+".work"); len(got) != 1 || string(got[0].Key) != "b" {
			t.Fatalf("the stage's input holds %d records, want only the whole one", len(got))
		}
	})
}
