package testkit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/router"
	"github.com/millrace/millrace/testkit"
	"github.com/millrace/millrace/transport"
)

// ownHeaders are the headers of r that are not millrace's or Watermill's:
// the record's own, as it came in.
func ownHeaders(r testkit.Record) filters.Headers {
	var hs filters.Headers
	for _, h := range r.HeaderList {
		if !strings.HasPrefix(h.Key, "millrace-") && h.Key != "_watermill_message_uuid" {
			hs = append(hs, h)
		}
	}
	return hs
}

// sameHeaders reports whether a and b are the same list: same order, same
// names, same bytes, null values null.
func sameHeaders(a, b filters.Headers) bool {
	return slices.EqualFunc(a, b, func(x, y filters.Header) bool {
		return x.Key == y.Key && bytes.Equal(x.Value, y.Value) && (x.Value == nil) == (y.Value == nil)
	})
}

// Kafka headers are an ordered list that may repeat a name and hold null
// values (KIP-82): a stage's outputs and its quarantine copies keep them
// so. Headers named like millrace's internal metadata (_millrace_key,
// _millrace_partition) are data: they neither set a key-less record's key
// nor pin its retry tier and quarantine copies to a partition (one that
// does not exist here: the record was retried for ever).
func TestFaults_headers_are_kept_in_order_with_repeats_and_cannot_steer_a_record(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		name := "headers-" + testkit.Unique()
		plan := testkit.LoadYAML(t, fmt.Sprintf(`
version: 1
defaults: {partitions: 2}
pipelines:
  - name: %[1]s
    input: %[1]s.in
    output: %[1]s.out
    stages:
      - name: flaky
        filter: test-flaky
        retry: {attempts: 1, tiers: [100ms]}
`, name))
		tagged := filters.Headers{
			{Key: "tag", Value: []byte("x")}, {Key: "tag", Value: []byte("y")}, {Key: "tag", Value: []byte("z")},
			{Key: "empty", Value: []byte{}}, {Key: "null", Value: nil}, {Key: "bytes", Value: []byte("a\xffb")},
			{Key: "tag", Value: []byte("w")},
		}
		forged := filters.HeadersOf("_millrace_key", "forged", "_millrace_partition", "7", "tag", "q")
		rec := func(key string, seq, fail int, hs filters.Headers) testkit.Record {
			r := testkit.Record{Value: fmt.Appendf(nil, `{"seq":%d,"fail":%d}`, seq, fail), HeaderList: hs}
			if key != "" {
				r.Key = []byte(key)
			}
			return r
		}
		b.CreateTopic(t, name+".in", 2)
		b.Produce(t, name+".in", []testkit.Record{
			rec("a", 0, 0, tagged), rec("b", 1, -1, tagged), rec("", 2, 0, forged), rec("", 3, -1, forged),
		})
		testkit.Run(t, b, plan, testkit.RunOptions{})

		out := b.Read(t, name+".out", 2, time.Minute)
		q := b.Read(t, name+".quarantine", 2, time.Minute)
		bySeq := map[int]testkit.Record{}
		for _, r := range append(out, q...) {
			var j job
			if err := json.Unmarshal(r.Value, &j); err != nil {
				t.Fatalf("record %q: %v", r.Value, err)
			}
			bySeq[j.Seq] = r
		}
		for seq, want := range map[int]filters.Headers{0: tagged, 1: tagged, 2: forged, 3: forged} {
			r, ok := bySeq[seq]
			if !ok {
				t.Fatalf("seq %d is neither in the output nor in the quarantine", seq)
			}
			if got := ownHeaders(r); !sameHeaders(got, want) {
				t.Errorf("seq %d headers %q, want %q (in order, repeats, empty and null values kept)", seq, got, want)
			}
		}
		for _, seq := range []int{2, 3} {
			if k := bySeq[seq].Key; k != nil {
				t.Errorf("seq %d came out with key %q; it had none (a _millrace_key header must not set it)", seq, k)
			}
		}
		if got := bySeq[3].Headers["millrace-attempt"]; got != "2" {
			t.Errorf("seq 3 quarantined after attempt %q, want 2 (one inline, one in the tier)", got)
		}
	})
}

// A record whose outputs the broker cannot take (over the size limit) is
// the record's own fault, not an outage: it is quarantined and the stage
// goes on, instead of being handed out again for ever with its key and
// then its partition's window blocked. When even the quarantine copy is
// too large, an envelope is quarantined: the failure headers, the key and
// the first 64 KiB of the payload, and millrace-truncated with the sizes.
func TestFaults_a_record_too_large_to_publish_is_quarantined_and_the_stage_goes_on(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		name := "large-" + testkit.Unique()
		plan := testkit.LoadYAML(t, fmt.Sprintf(`
version: 1
defaults: {partitions: 2}
pipelines:
  - name: %[1]s
    input: %[1]s.in
    output: %[1]s.out
    stages:
      - name: grow
        filter: jq
        config: {program: 'if .double then .s += .s else . end'}
`, name))
		const small = 600
		var in []testkit.Record
		for i := range small {
			in = append(in, testkit.Record{Key: fmt.Appendf(nil, "k-%d", i%10), Value: fmt.Appendf(nil, `{"seq":%d}`, i)})
			switch i {
			case 100: // 600 KB, doubled by the filter: the output is too large, the record is not
				in = append(in, testkit.Record{Key: []byte("k-3"),
					Value: fmt.Appendf(nil, `{"seq":-1,"double":true,"s":%q}`, strings.Repeat("d", 600_000))})
			case 300: // accepted by the broker, too large once the stage adds its headers
				in = append(in, testkit.Record{Key: []byte("k-7"),
					Value: fmt.Appendf(nil, `{"seq":-2,"s":%q}`, strings.Repeat("h", 1_048_380))})
			}
		}
		b.CreateTopic(t, name+".in", 2)
		produceLarge(t, b, name+".in", in)
		testkit.Run(t, b, plan, testkit.RunOptions{})

		out := b.Read(t, name+".out", small, time.Minute)
		testkit.Eventually(t, time.Minute, func() bool {
			return b.GroupLag(t, "millrace."+name+".grow", name+".in") == 0
		}, "the stage did not commit every record: a too-large record blocks it")
		if out = b.ReadAll(t, name+".out"); len(out) != small {
			t.Fatalf("output holds %d records, want the %d small ones", len(out), small)
		}
		q := b.ReadAll(t, name+".quarantine")
		if len(q) != 2 {
			t.Fatalf("quarantine holds %d records, want the 2 too large ones", len(q))
		}
		for _, r := range q {
			switch string(r.Key) {
			case "k-3": // the copy fits: the record, whole
				if !bytes.Equal(r.Value, in[101].Value) || r.Headers[filters.HeaderTruncated] != "" {
					t.Errorf("the 600 KB record was quarantined changed (%d bytes, truncated %q)", len(r.Value), r.Headers[filters.HeaderTruncated])
				}
			case "k-7": // an envelope
				if !bytes.Equal(r.Value, in[302].Value[:64<<10]) {
					t.Errorf("the envelope holds %d bytes of payload, want the first 65536 of the record", len(r.Value))
				}
				if want := fmt.Sprintf("payload=%d key=3 headers=", len(in[302].Value)); !strings.HasPrefix(r.Headers[filters.HeaderTruncated], want) {
					t.Errorf("millrace-truncated = %q, want it to start %q", r.Headers[filters.HeaderTruncated], want)
				}
			default:
				t.Fatalf("quarantined record with key %q", r.Key)
			}
			if e := r.Headers[filters.HeaderError]; !strings.Contains(e, "too large") && !strings.Contains(e, "MESSAGE_TOO_LARGE") {
				t.Errorf("record %s quarantined with error %q; want it to say the output was too large", r.Key, e)
			}
			if r.Headers[filters.HeaderStage] != "grow" || r.Headers[filters.HeaderOrigin] == "" {
				t.Errorf("record %s quarantined without its stage and origin: %v", r.Key, r.Headers)
			}
		}
	})
}

// produceLarge produces records of up to 1 MiB (the broker's default
// message.max.bytes), past sarama's default producer limit.
func produceLarge(t *testing.T, b testkit.Backend, topic string, records []testkit.Record) {
	t.Helper()
	cfg := transport.NewProducerConfig("testkit")
	cfg.Producer.MaxMessageBytes = 1048588
	cfg.Producer.Return.Successes = true
	p, err := sarama.NewSyncProducer(b.Brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, r := range records {
		m := &sarama.ProducerMessage{Topic: topic, Key: sarama.ByteEncoder(r.Key), Value: sarama.ByteEncoder(r.Value)}
		if _, _, err := p.SendMessage(m); err != nil {
			t.Fatalf("produce a %d-byte record: %v", len(r.Value), err)
		}
	}
}

// partitionPlan is a pipeline of one test-flaky stage with retry tiers,
// created with fewer partitions than its input may have.
func partitionPlan(name, ordering string) string {
	return fmt.Sprintf(`
version: 1
defaults: {partitions: 2}
pipelines:
  - name: %[1]s
    input: %[1]s.in
    output: %[1]s.out
    stages:
      - name: flaky
        filter: test-flaky
        ordering: %[2]s
        retry: {attempts: 1, tiers: [200ms]}
`, name, ordering)
}

// flakyJobs is jobs with seq numbers from seq0.
func flakyJobs(seq0, n int, keyOf func(i int) string, fail func(i int) int) []testkit.Record {
	recs := jobs(n, keyOf, fail)
	for i := range recs {
		var j job
		_ = json.Unmarshal(recs[i].Value, &j)
		j.Seq += seq0
		recs[i].Value, _ = json.Marshal(j)
	}
	return recs
}

// checkDrained waits until the stage has committed everything of its input
// and tiers, then checks that every record came out or was quarantined
// once at least: failing ones (seq%10 == 0) quarantined, others out.
func checkDrained(t *testing.T, b testkit.Backend, name string, n int) {
	t.Helper()
	group := "millrace." + name + ".flaky"
	testkit.Eventually(t, 2*time.Minute, func() bool {
		return b.GroupLag(t, group, name+".in") == 0 && b.GroupLag(t, group, name+".flaky.retry.1") == 0 &&
			len(b.ReadAll(t, name+".out"))+len(b.ReadAll(t, name+".quarantine")) >= n
	}, "stage did not drain: lag %d on the input, %d on the tier; %d out, %d quarantined",
		b.GroupLag(t, group, name+".in"), b.GroupLag(t, group, name+".flaky.retry.1"),
		len(b.ReadAll(t, name+".out")), len(b.ReadAll(t, name+".quarantine")))
	got := map[int]string{}
	for topic, where := range map[string]string{name + ".out": "out", name + ".quarantine": "quarantine"} {
		for _, j := range decode(t, b.ReadAll(t, topic)) {
			got[j.Seq] = where
		}
	}
	for seq := range n {
		want := "out"
		if seq%10 == 0 {
			want = "quarantine"
		}
		if got[seq] != want {
			t.Fatalf("seq %d: %q, want %s", seq, got[seq], want)
		}
	}
}

// An input that has more partitions than pipelines.yaml says (created
// before, by somebody else) is read whole: the retry tiers are created with
// the input's partition count, not the file's, so the records of every
// partition can go through them (the parked-key restore read tier
// partitions that did not exist and looped; with ordering none, failing
// records of partitions 2 and 3 were retried for ever).
func TestFaults_an_input_with_more_partitions_than_the_plan_is_read_whole(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		for _, ordering := range []string{"key", "none"} {
			t.Run(ordering, func(t *testing.T) {
				name := "parts-" + testkit.Unique()
				b.CreateTopic(t, name+".in", 4)
				const n = 200
				b.Produce(t, name+".in", flakyJobs(0, n, func(i int) string { return fmt.Sprint("k-", i%40) },
					func(i int) int { return map[bool]int{true: -1, false: i % 2}[i%10 == 0] }))
				testkit.Run(t, b, testkit.LoadYAML(t, partitionPlan(name, ordering)), testkit.RunOptions{})
				checkDrained(t, b, name, n)
				if parts, err := b.Client(t).Partitions(name + ".flaky.retry.1"); err != nil || len(parts) != 4 {
					t.Fatalf("retry tier has %d partitions (%v), want the input's 4", len(parts), err)
				}
			})
		}
	})
}

// Partitions added to the input of a running stage are read within a few
// metadata refreshes, and its retry tiers grow with it.
func TestFaults_partitions_added_to_a_running_input_are_read(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		name := "grow-" + testkit.Unique()
		b.CreateTopic(t, name+".in", 2)
		const refresh = 2 * time.Second
		testkit.Run(t, b, testkit.LoadYAML(t, partitionPlan(name, "key")), testkit.RunOptions{
			Configure: func(c *router.EngineConfig) { c.Sarama.Metadata.RefreshFrequency = refresh },
		})
		keyOf := func(i int) string { return fmt.Sprint("k-", i%40) }
		fail := func(i int) int { return map[bool]int{true: -1, false: i % 2}[i%10 == 0] }
		b.Produce(t, name+".in", flakyJobs(0, 100, keyOf, fail))
		testkit.Eventually(t, time.Minute, func() bool { return len(b.ReadAll(t, name+".out")) >= 90 },
			"the first 90 good records did not come out")
		if err := b.Admin(t).CreatePartitions(name+".in", 4, nil, false); err != nil {
			t.Fatal(err)
		}
		grown := time.Now()
		b.Produce(t, name+".in", flakyJobs(100, 100, keyOf, fail))
		checkDrained(t, b, name, 200)
		t.Logf("%s: records in the new partitions done %s after they were added (metadata refresh %s)",
			b.Name, time.Since(grown).Round(time.Millisecond), refresh)
		if parts, err := b.Client(t).Partitions(name + ".flaky.retry.1"); err != nil || len(parts) != 4 {
			t.Fatalf("retry tier has %d partitions (%v), want the input's 4", len(parts), err)
		}
	})
}

// slowRuns tracks test-slow's calls: per key, how many run now; the most
// that ever ran at once; and per payload how often it ran.
var slowRuns = struct {
	sync.Mutex
	running map[string]int
	overlap int
	runs    map[string]int
}{running: map[string]int{}, runs: map[string]int{}}

func init() {
	filters.MustRegister(filters.Spec{
		Name:    "test-slow",
		Summary: "Takes its payload's \"ms\" milliseconds (or until cancelled), noting runs of a key that overlap.",
		New: func(filters.Config) (filters.Filter, error) {
			return filters.Func(func(ctx context.Context, m *filters.Message) ([]*filters.Message, error) {
				var p struct{ MS int }
				if err := json.Unmarshal(m.Payload, &p); err != nil {
					return nil, filters.Permanent(err)
				}
				slowRuns.Lock()
				if slowRuns.running[string(m.Key)]++; slowRuns.running[string(m.Key)] > 1 {
					slowRuns.overlap++
				}
				slowRuns.runs[string(m.Payload)]++
				slowRuns.Unlock()
				defer func() {
					slowRuns.Lock()
					slowRuns.running[string(m.Key)]--
					slowRuns.Unlock()
				}()
				t := time.NewTimer(time.Duration(p.MS) * time.Millisecond)
				defer t.Stop()
				select {
				case <-t.C:
					return []*filters.Message{m}, nil
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}), nil
		},
	})
}

// A member that drains its records when a rebalance revokes its partitions
// must not be expelled for it: the consumer group's rebalance timeout is
// kept above the drain bound (the stop timeout, plus a grace), whatever the
// client config says. Expelled, it went on running its records while the
// member that took them over started them again: every record ran twice
// and two runs of one key overlapped.
func TestFaults_a_slow_drain_on_rebalance_does_not_get_the_member_expelled(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		name := "drain-" + testkit.Unique()
		plan := testkit.LoadYAML(t, fmt.Sprintf(`
version: 1
defaults: {partitions: 2}
pipelines:
  - name: %[1]s
    input: %[1]s.in
    output: %[1]s.out
    stages:
      - {name: slow, filter: test-slow, timeout: 1m}
`, name))
		opts := testkit.RunOptions{Configure: func(c *router.EngineConfig) {
			c.StopTimeout = 10 * time.Second
			c.Sarama.Consumer.Group.Rebalance.Timeout = 3 * time.Second // shorter than the drain
		}}
		b.CreateTopic(t, name+".in", 2)
		var in []testkit.Record
		for i := range 4 {
			in = append(in, testkit.Record{Key: fmt.Appendf(nil, "k-%d", i), Value: fmt.Appendf(nil, `{"ms":6000,"n":%d,"p":%q}`, i, name)})
		}
		slowRuns.Lock()
		overlapBefore := slowRuns.overlap
		slowRuns.Unlock()
		testkit.Run(t, b, plan, opts)
		b.Produce(t, name+".in", in)
		testkit.Eventually(t, 30*time.Second, func() bool {
			slowRuns.Lock()
			defer slowRuns.Unlock()
			n := 0
			for _, r := range in {
				n += slowRuns.runs[string(r.Value)]
			}
			return n == len(in)
		}, "the first member did not start the 4 records")
		testkit.Run(t, b, plan, opts) // a second member joins: the first drains
		out := b.Read(t, name+".out", len(in), time.Minute)
		testkit.Eventually(t, time.Minute, func() bool {
			return b.GroupLag(t, "millrace."+name+".slow", name+".in") == 0
		}, "the stage did not commit its input")
		slowRuns.Lock()
		defer slowRuns.Unlock()
		for _, r := range in {
			if n := slowRuns.runs[string(r.Value)]; n != 1 {
				t.Errorf("record %s ran %d times, want once", r.Value, n)
			}
		}
		if slowRuns.overlap > overlapBefore {
			t.Errorf("%d runs of a key overlapped another run of it", slowRuns.overlap-overlapBefore)
		}
		if len(out) != len(in) {
			t.Errorf("output holds %d records, want %d", len(out), len(in))
		}
	})
}

// A stage's session and rebalance timeouts from pipelines.yaml reach the
// broker, up to the top of the range validation allows (Kafka's default
// group.max.session.timeout.ms, 30 m): the group is joined, records flow.
func TestFaults_yaml_group_timeouts_are_accepted_by_the_broker(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		name := "timeouts-" + testkit.Unique()
		plan := testkit.LoadYAML(t, fmt.Sprintf(`
version: 1
pipelines:
  - name: %[1]s
    input: %[1]s.in
    output: %[1]s.out
    partitions: 1
    session_timeout: 30m
    rebalance_timeout: 2h
    stages:
      - {name: pass, filter: jq, config: {program: '.'}}
`, name))
		testkit.Run(t, b, plan, testkit.RunOptions{})
		b.Produce(t, name+".in", []testkit.Record{{Value: []byte(`{"n":1}`)}})
		b.Read(t, name+".out", 1, time.Minute)
	})
}
