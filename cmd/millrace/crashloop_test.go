package main_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/millrace/millrace/testkit"
	"github.com/millrace/millrace/transport"
)

// crashLoopLimit bounds how long the healthy process may take to drain the
// crash loop's records. Dead members go in two waves, one session timeout
// each, on Kafka as on the embedded broker: a member killed while Stable
// holds up the join phase until its session expires; the members killed
// with a JoinGroup parked then get their join response on a dead
// connection, and expire one session timeout after that, while the healthy
// member waits in SyncGroup (measured on Kafka 4.1.1: the group completes
// its join at 3-5 s, is back to one member at 13-15 s). The margin is
// sarama's 2 s backoff before it rejoins, the process's start (under 1 s)
// and the drain of 40,000 records by one jq stage (2-4 s here, up to 10 s
// on a busy 2-core machine). The limit stays below the 60 s rebalance
// timeout, so a broker that waits that out for dead members fails too.
const crashLoopLimit = 2*transport.DefaultSessionTimeout + 15*time.Second

// TestRun_a_crash_loop_leaves_no_wedged_group is issue 11's crash loop:
// 12 processes killed with SIGKILL 0.1-0.9 s after they start (so some die
// with a JoinGroup or SyncGroup parked at the coordinator), then one
// healthy process, which must drain every record once the dead members'
// sessions have expired (crashLoopLimit), as on Kafka: nothing may wait for
// the rebalance timeout, let alone wedge the group for good.
func TestRun_a_crash_loop_leaves_no_wedged_group(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, backend testkit.Backend) {
		dir := t.TempDir()
		if backend.Name == "embedded" {
			// A broker of its own, so the kills never take it down.
			_, backend = startBroker(t, "broker", dir, freePort(t))
		}
		brokers := strings.Join(backend.Brokers, ",")
		name := "crashloop-" + testkit.Unique()
		group, input := "millrace."+name+".inc", name+".in"
		writeFile(t, dir, "pipelines.yaml", fmt.Sprintf(`version: 1
pipelines:
  - name: %[1]s
    input: %[1]s.in
    output: %[1]s.out
    partitions: 2
    stages:
      - {name: inc, filter: jq, config: {program: '.n += 1'}}
`, name))
		const n = 20000
		produce := func(from, to int) {
			t.Helper()
			var lines strings.Builder
			for i := from; i < to; i++ {
				fmt.Fprintf(&lines, `{"id":%d,"k":"k%d","n":0}`+"\n", i, i%100)
			}
			if out, stderr, code := cli(t, dir, lines.String(), "produce", "--brokers", brokers, "--pipeline", name, "--key-jq", ".k"); code != 0 {
				t.Fatalf("produce: exit %d\n%s%s", code, out, stderr)
			}
		}
		produce(0, n)

		var delays []string
		for i := range 12 {
			p := start(t, fmt.Sprintf("crash %d", i+1), dir, nil, "run", "--brokers", brokers)
			d := 100*time.Millisecond + rand.N(800*time.Millisecond)
			delays = append(delays, d.Round(time.Millisecond).String())
			time.Sleep(d) // the point of the test: a kill at a random moment of the start
			if err := p.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			<-p.done
		}
		t.Logf("%s: killed 12 processes after %s", backend.Name, strings.Join(delays, " "))
		produce(n, 2*n)

		client := backend.Client(t)
		admin, err := sarama.NewClusterAdminFromClient(client)
		if err != nil {
			t.Fatal(err)
		}
		healthy := start(t, "healthy", dir, nil, "run", "--brokers", brokers)
		started := time.Now()
		var history []string // the group's states (members) as they changed
		last := ""
		for {
			if st := groupState(admin, group); st != last {
				history = append(history, fmt.Sprintf("%s at %.1fs", st, time.Since(started).Seconds()))
				last = st
			}
			lag, err := stageLag(client, admin, group, input)
			if err == nil && lag == 0 {
				break
			}
			if time.Since(started) > crashLoopLimit {
				t.Fatalf("%s: the healthy process did not drain %d records within %s (2 session timeouts of %s + 15s): lag %d (%v); %s; the group was %s",
					backend.Name, 2*n, crashLoopLimit, transport.DefaultSessionTimeout, lag, err,
					describeGroup(admin, group), strings.Join(history, ", "))
			}
			select {
			case <-healthy.done:
				t.Fatalf("the healthy process exited: %v", healthy.err)
			case <-time.After(100 * time.Millisecond):
			}
		}
		drained := time.Since(started)

		seen := map[int]bool{}
		recs := backend.ReadAll(t, name+".out")
		for _, r := range recs {
			var v struct{ ID, N int }
			if err := json.Unmarshal(r.Value, &v); err != nil || v.N != 1 {
				t.Fatalf("output is not a record the stage incremented once: %s", r.Value)
			}
			seen[v.ID] = true
		}
		for i := range 2 * n {
			if !seen[i] {
				t.Fatalf("record %d was lost", i)
			}
		}
		t.Logf("%s: the healthy process drained %d records in %s (limit %s); %d outputs, %d duplicates; the group was %s",
			backend.Name, 2*n, drained.Round(10*time.Millisecond), crashLoopLimit, len(recs), len(recs)-len(seen), strings.Join(history, ", "))
		healthy.stop(30 * time.Second)
	})
}

// stageLag is how many records of topic group has not committed yet.
func stageLag(client sarama.Client, admin sarama.ClusterAdmin, group, topic string) (int64, error) {
	parts, err := client.Partitions(topic)
	if err != nil {
		return -1, err
	}
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if errors.Is(err, sarama.ErrGroupIDNotFound) {
		resp, err = &sarama.OffsetFetchResponse{}, nil // the embedded broker: nothing committed yet
	}
	if err != nil {
		return -1, err
	}
	var lag int64
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return -1, err
		}
		committed := int64(0)
		if blk := resp.GetBlock(topic, p); blk != nil && blk.Offset >= 0 {
			committed = blk.Offset
		}
		lag += end - committed
	}
	return lag, nil
}

// groupState is the group's state and member count, as "Stable (1)".
func groupState(admin sarama.ClusterAdmin, group string) string {
	ds, err := admin.DescribeConsumerGroups([]string{group})
	if err != nil || len(ds) != 1 {
		return fmt.Sprintf("unknown (%v)", err)
	}
	return fmt.Sprintf("%s (%d)", ds[0].State, len(ds[0].Members))
}

// describeGroup says what state group is in and who its members are.
func describeGroup(admin sarama.ClusterAdmin, group string) string {
	ds, err := admin.DescribeConsumerGroups([]string{group})
	if err != nil || len(ds) != 1 {
		return fmt.Sprintf("group %s: describe failed: %v", group, err)
	}
	var members []string
	for id, m := range ds[0].Members {
		members = append(members, fmt.Sprintf("%s (%s)", id, m.ClientHost))
	}
	return fmt.Sprintf("group %s is %s with %d members: %s", group, ds[0].State, len(members), strings.Join(members, ", "))
}
