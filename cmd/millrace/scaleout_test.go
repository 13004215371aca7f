package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/testkit"
	"github.com/millrace/millrace/transport"
)

// The scale-out tests run one I/O-bound stage — the filter "wait" of a
// custom binary (testdata/waitfilter, built as README's "Writing a
// filter" tells a user to build theirs) waits 20 ms per record, with
// concurrency 1 per process — as several `run --stage` processes on an
// 8-partition input, and measure from the output topic: the records'
// timestamps are set by the stage's producer as each record's outputs
// are published, so they say when the stage finished each record, with
// no process start-up in them.

const (
	scalePartitions = 8
	scaleWaitMS     = 20
	// keysPerPartition keys per partition. Records of one key run one at
	// a time, so the keys bound how many records of a partition are
	// handed out at once, and a process giving partitions up in a
	// rebalance (or stopping) first finishes every record handed out,
	// started or still waiting for the stage's one slot: with 64 keys per
	// partition (a window of up to 64 records each) a join held the moved
	// partitions for about 6 s, 20 ms per waiting record. With 2, what a
	// rebalance waits for is a few records, and the pauses measured are
	// the group's own.
	keysPerPartition = 2
)

// waitExe is the custom binary, built once per test binary beside bin
// (so TestMain removes it).
var waitExe struct {
	once sync.Once
	path string
	err  error
}

func waitBinary(t *testing.T) string {
	t.Helper()
	waitExe.once.Do(func() {
		path := filepath.Join(filepath.Dir(bin), "millrace-wait")
		out, err := exec.Command("go", "build", "-o", path, "./testdata/waitfilter").CombinedOutput()
		if err != nil {
			waitExe.err = fmt.Errorf("build testdata/waitfilter: %v\n%s", err, out)
			return
		}
		waitExe.path = path
	})
	if waitExe.err != nil {
		t.Fatal(waitExe.err)
	}
	return waitExe.path
}

// waitPipeline is a pipeline of one stage, wait, reading name.in (8
// partitions) and writing name.out, with the shortest session timeout
// brokers allow by default.
func waitPipeline(name string) string {
	return fmt.Sprintf(`version: 1
defaults: {session_timeout: 6s}
pipelines:
  - name: %[1]s
    input: %[1]s.in
    output: %[1]s.out
    partitions: %[2]d
    stages:
      - {name: wait, filter: wait, config: {ms: %[3]d}, concurrency: 1}
`, name, scalePartitions, scaleWaitMS)
}

// scaleKeys returns keysPerPartition keys for each partition (murmur2, as
// producers place them), interleaved: key i lives in partition
// i % scalePartitions. Records keyed keys[id % len(keys)] spread evenly
// over the partitions, so that no replica gets more work than another
// from the luck of the hash.
func scaleKeys(t *testing.T) []string {
	t.Helper()
	part := transport.NewMurmur2Partitioner("")
	byPart := make([][]string, scalePartitions)
	for i := 0; slices.ContainsFunc(byPart, func(ks []string) bool { return len(ks) < keysPerPartition }); i++ {
		k := fmt.Sprintf("k%d", i)
		p, err := part.Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(k)}, scalePartitions)
		if err != nil {
			t.Fatal(err)
		}
		if len(byPart[p]) < keysPerPartition {
			byPart[p] = append(byPart[p], k)
		}
	}
	var keys []string
	for i := range keysPerPartition {
		for p := range scalePartitions {
			keys = append(keys, byPart[p][i])
		}
	}
	return keys
}

// scaleRecords are records from, from+1, … from+n-1: {"id":i}, keyed
// keys[i % len(keys)].
func scaleRecords(keys []string, from, n int) []testkit.Record {
	recs := make([]testkit.Record, n)
	for i := range recs {
		id := from + i
		recs[i] = testkit.Record{Key: []byte(keys[id%len(keys)]), Value: fmt.Appendf(nil, `{"id":%d}`, id)}
	}
	return recs
}

// group is what DescribeGroups says of a consumer group: its state and
// the partitions of topic each member holds.
type group struct {
	state   string
	members [][]int32
}

// describe returns the state of group g and who holds topic's partitions.
func describe(admin sarama.ClusterAdmin, g, topic string) (group, error) {
	ds, err := admin.DescribeConsumerGroups([]string{g})
	if err != nil {
		return group{}, err
	}
	if len(ds) != 1 || ds[0].Err != sarama.ErrNoError {
		return group{}, fmt.Errorf("describe group %s: %v", g, ds)
	}
	out := group{state: ds[0].State}
	for _, m := range ds[0].Members {
		a, err := m.GetMemberAssignment()
		if err != nil {
			return group{}, err
		}
		var ps []int32
		if a != nil {
			ps = slices.Sorted(slices.Values(a.Topics[topic]))
		}
		out.members = append(out.members, ps)
	}
	slices.SortFunc(out.members, slices.Compare)
	return out, nil
}

func (g group) String() string { return fmt.Sprintf("%s %v", g.state, g.members) }

// balanced reports whether the group is stable with n members that
// together hold every partition of the input, each some.
func (g group) balanced(n int) bool {
	if g.state != "Stable" || len(g.members) != n {
		return false
	}
	held := 0
	for _, ps := range g.members {
		if len(ps) == 0 {
			return false
		}
		held += len(ps)
	}
	return held == scalePartitions
}

// waitBalanced waits until the stage's group is stable with n members
// holding every partition, and returns the group.
func waitBalanced(t *testing.T, admin sarama.ClusterAdmin, g, topic string, n int, procs []*proc, timeout time.Duration) group {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last group
	var lastErr error
	for {
		d, err := describe(admin, g, topic)
		if err == nil && d.balanced(n) {
			return d
		}
		last, lastErr = d, err
		for _, p := range procs {
			if p.exited() {
				t.Fatalf("%s exited (%v) while waiting for %d members in group %s", p.name, p.err, n, g)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s did not settle with %d members holding all %d partitions within %s: last %v (%v)",
				g, n, scalePartitions, timeout, last, lastErr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ends returns the end offset of each partition of topic (waiting, as
// kafkaops.GetOffset does, for the leaders of a topic created a moment
// ago).
func ends(t *testing.T, client sarama.Client, topic string) []int64 {
	t.Helper()
	out := make([]int64, scalePartitions)
	for p := range out {
		end, err := kafkaops.GetOffset(context.Background(), client, topic, int32(p), sarama.OffsetNewest)
		if err != nil {
			t.Fatalf("end of %s/%d: %v", topic, p, err)
		}
		out[p] = end
	}
	return out
}

// waitOutputs waits until topic holds n records, and returns how many it
// holds.
func waitOutputs(t *testing.T, client sarama.Client, topic string, n int64, procs []*proc, timeout time.Duration) int64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var got int64
		for _, e := range ends(t, client, topic) {
			got += e
		}
		if got >= n {
			return got
		}
		for _, p := range procs {
			if p.exited() {
				t.Fatalf("%s exited (%v) with %d of %d records in %s", p.name, p.err, got, n, topic)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %d records after %s, want %d", topic, got, timeout, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitEveryPartition waits until every partition of topic has grown past
// from, and returns when it saw that.
func waitEveryPartition(t *testing.T, client sarama.Client, topic string, from []int64, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		now := ends(t, client, topic)
		grown := true
		for p := range now {
			grown = grown && now[p] > from[p]
		}
		if grown {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every partition of %s grew within %s: from %v to %v", topic, timeout, from, now)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// output is a record of a stage's output topic.
type output struct {
	partition int32
	at        time.Time // the record's timestamp: when the stage published it
	id        int
}

// readOutputs reads every record of topic, ordered by timestamp.
func readOutputs(t *testing.T, client sarama.Client, topic string) []output {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out []output
	for p, end := range ends(t, client, topic) {
		err := kafkaops.FetchRange(ctx, client, topic, int32(p), 0, end, func(m *sarama.ConsumerMessage) {
			var v struct{ ID int }
			if err := json.Unmarshal(m.Value, &v); err != nil {
				t.Errorf("%s/%d@%d: %q: %v", topic, p, m.Offset, m.Value, err)
			}
			out = append(out, output{partition: m.Partition, at: m.Timestamp, id: v.ID})
		})
		if err != nil {
			t.Fatalf("read %s/%d: %v", topic, p, err)
		}
	}
	slices.SortStableFunc(out, func(a, b output) int { return a.at.Compare(b.at) })
	return out
}

// TestScaleOut_an_io_bound_stage_runs_near_linearly_faster_on_4_processes_than_on_1
// runs the stage as 1, 2 and 4 processes, each round on a pipeline (and
// so a group and topics) of its own. Only once the group is stable with
// every process holding partitions does it produce the round's records
// (448 per process: about 9 s of work at 20 ms each); the rate is the
// records over the time from the first output record's timestamp to the
// last one's.
func TestScaleOut_an_io_bound_stage_runs_near_linearly_faster_on_4_processes_than_on_1(t *testing.T) {
	exe := waitBinary(t)
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		began := time.Now()
		dir, u := t.TempDir(), testkit.Unique()
		brokers := strings.Join(b.Brokers, ",")
		client := b.Client(t)
		admin := b.Admin(t)
		keys := scaleKeys(t)
		rates := map[int]float64{}
		for _, n := range []int{1, 2, 4} {
			name := fmt.Sprintf("scale-%s-x%d", u, n)
			file := name + ".yaml"
			writeFile(t, dir, file, waitPipeline(name))
			var procs []*proc
			for i := range n {
				procs = append(procs, startExe(t, exe, fmt.Sprintf("x%d run %d", n, i+1), dir, nil,
					"run", "-f", file, "--brokers", brokers, "--stage", name+"/wait"))
			}
			g := waitBalanced(t, admin, "millrace."+name+".wait", name+".in", n, procs, 2*time.Minute)
			records := 448 * n
			b.Produce(t, name+".in", scaleRecords(keys, 0, records))
			waitOutputs(t, client, name+".out", int64(records), procs, time.Duration(records)*scaleWaitMS*time.Millisecond/time.Duration(n)*3+30*time.Second)
			for _, p := range procs {
				p.stop(time.Minute)
			}
			outs := readOutputs(t, client, name+".out")
			ids := map[int]bool{}
			for _, o := range outs {
				ids[o.id] = true
			}
			if len(outs) != records || len(ids) != records {
				t.Fatalf("%d processes: %d output records, %d distinct ids, want %d of each", n, len(outs), len(ids), records)
			}
			took := outs[len(outs)-1].at.Sub(outs[0].at)
			rates[n] = float64(records-1) / took.Seconds()
			t.Logf("%s: replicas %d: %.1f records/s (%d records in %s; ideal %d/s; partitions held %v)",
				b.Name, n, rates[n], records, took.Round(time.Millisecond), 1000/scaleWaitMS*n, g.members)
		}
		ratio := rates[4] / rates[1]
		t.Logf("%s: 4 vs 1 replicas: %.2fx (want at least 3.2); the test took %s", b.Name, ratio, time.Since(began).Round(time.Second))
		if ratio < 3.2 {
			t.Errorf("4 replicas ran %.2fx as fast as 1, want at least 3.2x", ratio)
		}
	})
}

// event is a change of the stage's membership, from when the test made it
// (signalled or started a process) to when the stage had settled again:
// its group stable with the members it should have, and then every
// partition's output grown.
type event struct {
	name       string
	from, upTo time.Time
}

// pause is the stage's output around an event: the longest gap between
// consecutive output records of the stage (all partitions) and of one
// partition, counting the last record before the event as a start.
type pause struct{ stage, partition time.Duration }

func pauseIn(outs []output, from, upTo time.Time) pause {
	var p pause
	var last time.Time
	lastOf := map[int32]time.Time{}
	for _, o := range outs {
		if o.at.After(upTo) {
			break
		}
		if !o.at.Before(from) {
			if !last.IsZero() {
				p.stage = max(p.stage, o.at.Sub(last))
			}
			if l, ok := lastOf[o.partition]; ok {
				p.partition = max(p.partition, o.at.Sub(l))
			}
		}
		last, lastOf[o.partition] = o.at, o.at
	}
	return p
}

func (p pause) String() string {
	return fmt.Sprintf("%7s / %-7s", p.stage.Round(10*time.Millisecond), p.partition.Round(10*time.Millisecond))
}

// rebalancePauses runs the stage as 2 processes on a backlog; a third
// joins, then leaves (SIGTERM), then each of the first two restarts
// (SIGTERM, then started again: with the same --instance-id when static).
// It returns the pause around each event, and in a steady stretch before
// them.
func rebalancePauses(t *testing.T, b testkit.Backend, exe, dir, name string, static bool) (steady pause, events []event, pauses []pause) {
	t.Helper()
	brokers := strings.Join(b.Brokers, ",")
	client := b.Client(t)
	admin := b.Admin(t)
	file := name + ".yaml"
	writeFile(t, dir, file, waitPipeline(name))
	grp, in, out := "millrace."+name+".wait", name+".in", name+".out"
	mode := map[bool]string{false: "dynamic", true: "static"}[static]
	run := func(i int) *proc {
		args := []string{"run", "-f", file, "--brokers", brokers, "--stage", name + "/wait"}
		if static {
			args = append(args, "--instance-id", fmt.Sprintf("%s-%d", name, i))
		}
		return startExe(t, exe, fmt.Sprintf("%s run %d", mode, i), dir, nil, args...)
	}
	procs := []*proc{run(1), run(2)}
	waitBalanced(t, admin, grp, in, 2, procs, 2*time.Minute)
	// The backlog outlasts the test at 3 processes' pace (150/s); it is
	// checked at the end that some is left.
	const backlog = 8000
	b.Produce(t, in, scaleRecords(scaleKeys(t), 0, backlog))
	waitOutputs(t, client, out, 100, procs, time.Minute)
	from := time.Now()
	time.Sleep(2 * time.Second) // a steady stretch to compare with
	events = append(events, event{"steady", from, time.Now()})
	// settled waits until the group is stable with n members and every
	// partition's output has grown since, and ends the event begun at from.
	settled := func(what string, from time.Time, n int) {
		t.Helper()
		waitBalanced(t, admin, grp, in, n, procs, time.Minute)
		waitEveryPartition(t, client, out, ends(t, client, out), time.Minute)
		events = append(events, event{what, from, time.Now()})
		time.Sleep(time.Second) // keep the next event's window clear of this one
	}

	from = time.Now()
	procs = append(procs, run(3))
	settled("join", from, 3)

	from = time.Now()
	procs[2].stop(time.Minute)
	procs = procs[:2]
	settled("leave", from, 2)

	// Each of the first two restarts, so that the group's leader is one
	// of them (it rejoins as the leader, which Kafka answers differently).
	for i := range 2 {
		from = time.Now()
		procs[i].stop(time.Minute)
		procs[i] = run(i + 1)
		settled(fmt.Sprintf("restart %d", i+1), from, 2)
	}

	for _, p := range procs {
		p.stop(time.Minute)
	}
	outs := readOutputs(t, client, out)
	if len(outs) >= backlog {
		t.Fatalf("the stage ran out of backlog (%d records out of %d): the pauses may be idleness", len(outs), backlog)
	}
	for _, e := range events {
		pauses = append(pauses, pauseIn(outs, e.from, e.upTo))
	}
	return pauses[0], events[1:], pauses[1:]
}

// TestScaleOut_a_restart_pauses_the_stage_less_with_static_membership
// measures the pause in the stage's output (the longest gap between its
// output records' timestamps) while a third process joins, while it
// leaves (SIGTERM) and while each of the first two restarts, with dynamic
// and with static group membership (--instance-id).
func TestScaleOut_a_restart_pauses_the_stage_less_with_static_membership(t *testing.T) {
	exe := waitBinary(t)
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		began := time.Now()
		dir, u := t.TempDir(), testkit.Unique()
		var steady [2]pause
		var events [2][]event
		var pauses [2][]pause
		for i, static := range []bool{false, true} {
			steady[i], events[i], pauses[i] = rebalancePauses(t, b, exe, dir, fmt.Sprintf("pause-%s-%d", u, i), static)
		}
		var tbl strings.Builder
		fmt.Fprintf(&tbl, "%s: pauses in the stage's output (longest gap between output records: whole stage / one partition; "+
			"2 processes, a 3rd joins, it leaves with SIGTERM, each of the first two restarts; session timeout 6s):\n", b.Name)
		fmt.Fprintf(&tbl, "  %-9s %-17s %-17s\n", "", "dynamic", "static")
		fmt.Fprintf(&tbl, "  %-9s %s   %s\n", "steady", steady[0], steady[1])
		for j, e := range events[0] {
			fmt.Fprintf(&tbl, "  %-9s %s   %s   (settled in %s / %s)\n", e.name, pauses[0][j], pauses[1][j],
				e.upTo.Sub(e.from).Round(10*time.Millisecond), events[1][j].upTo.Sub(events[1][j].from).Round(10*time.Millisecond))
		}
		fmt.Fprintf(&tbl, "  (a static member that stops for good keeps its partitions idle until its session times out: the static leave)")
		t.Logf("%s", tbl.String())
		for j, e := range events[0] {
			if dyn, stat := pauses[0][j].stage, pauses[1][j].stage; strings.HasPrefix(e.name, "restart") && stat >= dyn {
				t.Errorf("%s paused the stage %s with static membership, not less than %s without", e.name, stat, dyn)
			}
		}
		t.Logf("%s: the test took %s", b.Name, time.Since(began).Round(time.Second))
	})
}
