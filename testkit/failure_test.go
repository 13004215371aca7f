package testkit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/testkit"
)

// job is the payload the failure tests send: fail says how often the
// record fails before it succeeds (-1: always), mode how ("error",
// "panic", "hang" — ignores its context past the stage timeout).
type job struct {
	Key  string `json:"k"`
	Seq  int    `json:"seq"`
	Fail int    `json:"fail"`
	Mode string `json:"mode,omitempty"`
}

// runs records, per pipeline, the order in which test-flaky ran records
// successfully (by seq).
var runs sync.Map // pipeline → *runLog

type runLog struct {
	mu   sync.Mutex
	seqs []int
}

func runsOf(pipeline string) []int {
	v, ok := runs.Load(pipeline)
	if !ok {
		return nil
	}
	l := v.(*runLog)
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.seqs)
}

func init() {
	filters.MustRegister(filters.Spec{
		Name:    "test-flaky",
		Summary: "Fails each job record as often as its \"fail\" field says, then passes it on.",
		New: func(cfg filters.Config) (filters.Filter, error) {
			var mu sync.Mutex
			tries := map[int]int{}
			v, _ := runs.LoadOrStore(cfg.Pipeline, &runLog{})
			log := v.(*runLog)
			return filters.Func(func(ctx context.Context, m *filters.Message) ([]*filters.Message, error) {
				var j job
				if err := json.Unmarshal(m.Payload, &j); err != nil {
					return nil, filters.Permanent(err)
				}
				mu.Lock()
				n := tries[j.Seq]
				tries[j.Seq]++
				mu.Unlock()
				if j.Fail < 0 || n < j.Fail {
					switch j.Mode {
					case "panic":
						panic(fmt.Sprintf("seq %d blew up", j.Seq))
					case "hang":
						time.Sleep(2 * time.Second)
						return []*filters.Message{m}, nil
					}
					return nil, fmt.Errorf("seq %d always fails (try %d)", j.Seq, n+1)
				}
				log.mu.Lock()
				log.seqs = append(log.seqs, j.Seq)
				log.mu.Unlock()
				return []*filters.Message{m}, nil
			}), nil
		},
	})
}

func jobs(n int, key func(i int) string, fail func(i int) int) []testkit.Record {
	out := make([]testkit.Record, n)
	for i := range out {
		j := job{Key: key(i), Seq: i, Fail: fail(i)}
		b, _ := json.Marshal(j)
		out[i] = testkit.Record{Key: []byte(j.Key), Value: b}
	}
	return out
}

func flakyPlan(t *testing.T, name, stagePolicy string) string {
	t.Helper()
	return fmt.Sprintf(`
version: 1
defaults: {partitions: 4}
pipelines:
  - name: %[1]s
    input: %[1]s.in
    output: %[1]s.out
    stages:
      - name: flaky
        filter: test-flaky
        %[2]s
`, name, stagePolicy)
}

func decode(t *testing.T, recs []testkit.Record) []job {
	t.Helper()
	out := make([]job, len(recs))
	for i, r := range recs {
		if err := json.Unmarshal(r.Value, &out[i]); err != nil {
			t.Fatalf("record %d/%d: %v", r.Partition, r.Offset, err)
		}
	}
	return out
}

func TestRetry_failing_records_go_through_tiers_to_quarantine_without_stalling_the_stage(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		name := "tiers-" + testkit.Unique()
		plan := testkit.LoadYAML(t, flakyPlan(t, name, `retry: {tiers: [2s, 3s]}`))
		// Every 100th record always fails; the first record is one of them.
		bad := func(i int) bool { return i%100 == 0 }
		in := jobs(1000, func(i int) string {
			if bad(i) {
				return fmt.Sprintf("bad-%d", i)
			}
			return fmt.Sprintf("k-%d", i%50)
		}, func(i int) int {
			if bad(i) {
				return -1
			}
			return 0
		})
		testkit.Run(t, b, plan, testkit.RunOptions{})
		start := time.Now()
		b.Produce(t, name+".in", in)
		out := b.Read(t, name+".out", 990, time.Minute)
		took := time.Since(start)
		q := b.ReadAll(t, name+".quarantine")
		t.Logf("%s: 990 good records out in %s; %d quarantined by then", b.Name, took.Round(time.Millisecond), len(q))
		if len(q) == 10 {
			t.Fatalf("all 10 failing records were quarantined before the 990 others were out (%s): the stage stalled behind them", took)
		}
		for _, j := range decode(t, out) {
			if bad(j.Seq) {
				t.Fatalf("failing record seq %d reached the output", j.Seq)
			}
		}

		q = b.Read(t, name+".quarantine", 10, time.Minute)
		if len(q) != 10 {
			t.Fatalf("quarantine holds %d records, want 10", len(q))
		}
		inBySeq := map[int]testkit.Record{}
		for i, r := range in {
			inBySeq[i] = r
		}
		for _, r := range q {
			var j job
			if err := json.Unmarshal(r.Value, &j); err != nil {
				t.Fatal(err)
			}
			orig := inBySeq[j.Seq]
			if !bad(j.Seq) || string(r.Key) != string(orig.Key) || string(r.Value) != string(orig.Value) {
				t.Fatalf("quarantined record key %q value %s: not an unchanged failing input", r.Key, r.Value)
			}
			h := r.Headers
			want := map[string]string{"millrace-stage": "flaky", "millrace-attempt": "3"}
			for k, v := range want {
				if h[k] != v {
					t.Errorf("seq %d: header %s = %q, want %q", j.Seq, k, h[k], v)
				}
			}
			if !strings.Contains(h["millrace-error"], fmt.Sprintf("seq %d always fails", j.Seq)) {
				t.Errorf("seq %d: error header %q", j.Seq, h["millrace-error"])
			}
			if !strings.HasPrefix(h["millrace-origin"], name+".in/") {
				t.Errorf("seq %d: origin %q is not the input record", j.Seq, h["millrace-origin"])
			}
			if h["millrace-job"] == "" {
				t.Errorf("seq %d: no job id", j.Seq)
			}
			first, err1 := time.Parse(time.RFC3339Nano, h["millrace-first-failure"])
			last, err2 := time.Parse(time.RFC3339Nano, h["millrace-last-failure"])
			if err1 != nil || err2 != nil || last.Sub(first) < 5*time.Second-100*time.Millisecond {
				t.Errorf("seq %d: first failure %q, last %q: want them ≥ 5s apart (two tiers)", j.Seq,
					h["millrace-first-failure"], h["millrace-last-failure"])
			}
			if _, ok := h["millrace-retry-at"]; ok {
				t.Errorf("seq %d: quarantined record still has millrace-retry-at", j.Seq)
			}
		}
	})
}

func TestRetry_records_that_fail_twice_then_succeed_come_out_with_attempt_3(t *testing.T) {
	for _, tc := range []struct{ name, policy string }{
		{"inline", `retry: {attempts: 3, backoff: {initial: 10ms, max: 50ms}}`},
		{"tiers", `retry: {tiers: [100ms, 100ms]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
				name := "twice-" + testkit.Unique()
				plan := testkit.LoadYAML(t, flakyPlan(t, name, tc.policy))
				const n = 100
				testkit.Run(t, b, plan, testkit.RunOptions{})
				b.Produce(t, name+".in", jobs(n, func(i int) string { return fmt.Sprintf("k-%d", i%10) },
					func(int) int { return 2 }))
				out := b.Read(t, name+".out", n, time.Minute)
				for _, r := range out {
					if r.Headers["millrace-attempt"] != "3" {
						t.Fatalf("output %s has millrace-attempt %q, want 3", r.Value, r.Headers["millrace-attempt"])
					}
					if r.Headers["millrace-error"] != "" || r.Headers["millrace-retry-at"] != "" {
						t.Fatalf("output %s carries failure headers %v", r.Value, r.Headers)
					}
				}
				testkit.Eventually(t, 30*time.Second, func() bool {
					return b.GroupLag(t, "millrace."+name+".flaky", name+".in") == 0
				}, "stage did not commit its input")
				if q := b.ReadAll(t, name+".quarantine"); len(q) != 0 {
					t.Fatalf("%d records quarantined, want none", len(q))
				}
				if got := len(b.ReadAll(t, name+".out")); got != n {
					t.Fatalf("output holds %d records, want %d", got, n)
				}
			})
		})
	}
}

// checkKeyOrder fails unless records of each key are in seq order.
func checkKeyOrder(t *testing.T, js []job) {
	t.Helper()
	last := map[string]int{}
	for _, j := range js {
		if prev, ok := last[j.Key]; ok && prev > j.Seq {
			t.Fatalf("key %s: seq %d came out after seq %d", j.Key, j.Seq, prev)
		}
		last[j.Key] = j.Seq
	}
}

func TestRetry_keeps_key_order_inline_and_through_tiers(t *testing.T) {
	for _, tc := range []struct{ name, policy string }{
		{"inline", `retry: {attempts: 3, backoff: {initial: 20ms, max: 100ms}}`},
		{"tiers", `retry: {tiers: [300ms, 300ms]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
				name := "order-" + testkit.Unique()
				plan := testkit.LoadYAML(t, flakyPlan(t, name, tc.policy))
				const n = 600
				testkit.Run(t, b, plan, testkit.RunOptions{})
				b.Produce(t, name+".in", jobs(n, func(i int) string { return fmt.Sprintf("k-%d", i%12) },
					func(i int) int { return []int{0, 0, 1, 0, 2, 0, 0}[i%7] }))
				out := b.Read(t, name+".out", n, time.Minute)
				// Each partition of the output is in the order the stage
				// produced; keys stay in their partition.
				js := decode(t, out)
				checkKeyOrder(t, js)
				seen := map[int]bool{}
				for _, j := range js {
					seen[j.Seq] = true
				}
				if len(seen) != n {
					t.Fatalf("%d distinct records out, want %d", len(seen), n)
				}
			})
		})
	}
}

func TestRetry_ordering_none_lets_later_records_of_a_key_pass_a_retried_one(t *testing.T) {
	b := testkit.Embedded(t)
	name := "unordered-" + testkit.Unique()
	plan := testkit.LoadYAML(t, flakyPlan(t, name, "retry: {tiers: [1s]}\n        ordering: none"))
	testkit.Run(t, b, plan, testkit.RunOptions{})
	b.Produce(t, name+".in", jobs(3, func(int) string { return "k" }, func(i int) int { return []int{1, 0, 0}[i] }))
	js := decode(t, b.Read(t, name+".out", 3, time.Minute))
	// 1 and 2 run concurrently, so either may come first; 0 comes last.
	if js[0].Seq+js[1].Seq != 3 || js[2].Seq != 0 {
		t.Fatalf("output seqs %d %d %d; want 1 and 2, then 0 (the retried record passed)", js[0].Seq, js[1].Seq, js[2].Seq)
	}
}

func TestRetry_a_panic_is_a_failure_with_a_short_stack_and_a_slow_call_times_out(t *testing.T) {
	b := testkit.Embedded(t)
	name := "panic-" + testkit.Unique()
	plan := testkit.LoadYAML(t, flakyPlan(t, name, "retry: {attempts: 2, backoff: {initial: 10ms}}\n        timeout: 200ms"))
	testkit.Run(t, b, plan, testkit.RunOptions{})
	b.Produce(t, name+".in", []testkit.Record{
		{Key: []byte("a"), Value: []byte(`{"k":"a","seq":1,"fail":-1,"mode":"panic"}`)},
		{Key: []byte("b"), Value: []byte(`{"k":"b","seq":2,"fail":-1,"mode":"hang"}`)},
		{Key: []byte("c"), Value: []byte(`{"k":"c","seq":3,"fail":0}`)},
	})
	if out := b.Read(t, name+".out", 1, time.Minute); string(out[0].Key) != "c" {
		t.Fatalf("output %q, want only c", out[0].Key)
	}
	q := b.Read(t, name+".quarantine", 2, time.Minute)
	byKey := map[string]map[string]string{}
	for _, r := range q {
		byKey[string(r.Key)] = r.Headers
	}
	if h := byKey["a"]; !strings.Contains(h["millrace-error"], "panic: seq 1 blew up") || h["millrace-attempt"] != "2" {
		t.Errorf("panicked record headers %v", h)
	}
	if st := byKey["a"]["millrace-stack"]; !strings.Contains(st, "failure_test.go") || strings.Count(st, " < ") > 5 {
		t.Errorf("stack summary %q: want a few frames naming the filter's file", st)
	}
	if h := byKey["b"]; !strings.Contains(h["millrace-error"], "timed out after 200ms") || h["millrace-attempt"] != "2" {
		t.Errorf("timed-out record headers %v", h)
	}
}

func TestRetry_stopping_quarantines_nothing_and_commits_finished_work(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		name := "stop-" + testkit.Unique()
		// A filter that takes a while per record, honouring cancellation.
		plan := testkit.LoadYAML(t, fmt.Sprintf(`
version: 1
defaults: {partitions: 2, concurrency: 4}
pipelines:
  - name: %[1]s
    input: %[1]s.in
    output: %[1]s.out
    retry: {attempts: 1}
    stages:
      - {name: slow, filter: exec, config: {command: [sh, -c, 'sleep 0.05; cat']}}
`, name))
		const n = 400
		in := make([]testkit.Record, n)
		for i := range in {
			in[i] = testkit.Record{Key: []byte(strconv.Itoa(i % 20)), Value: []byte(strconv.Itoa(i))}
		}
		b.CreateTopic(t, name+".in", 2)
		b.Produce(t, name+".in", in)
		r := testkit.Run(t, b, plan, testkit.RunOptions{})
		b.Read(t, name+".out", 20, time.Minute)
		if err := r.Stop(); err != nil {
			t.Fatalf("stop: %v", err)
		}
		out := b.ReadAll(t, name+".out")
		if len(out) >= n {
			t.Fatalf("all %d records were done before the stop; the test needs it to land mid-stream", n)
		}
		if q := b.ReadAll(t, name+".quarantine"); len(q) != 0 {
			t.Fatalf("stopping quarantined %d records: %s", len(q), q[0].Headers["millrace-error"])
		}
		distinct := map[string]int{}
		for _, r := range out {
			distinct[string(r.Value)]++
		}
		for v, n := range distinct {
			if n > 1 {
				t.Errorf("record %s came out %d times", v, n)
			}
		}
		lag := b.GroupLag(t, "millrace."+name+".slow", name+".in")
		if done := int64(n) - lag; done != int64(len(out)) {
			t.Fatalf("committed %d input records but %d outputs exist: finished work must be committed, and only it", done, len(out))
		}
		t.Logf("%s: stopped after %d of %d records, all committed, none quarantined", b.Name, len(out), n)
	})
}

func TestPriority_high_priority_records_overtake_a_normal_backlog(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		name := "prio-" + testkit.Unique()
		plan := testkit.LoadYAML(t, fmt.Sprintf(`
version: 1
defaults: {partitions: 4}
pipelines:
  - name: %[1]s
    input: %[1]s.in
    priority: [{topic: %[1]s.high, weight: 8}]
    output: %[1]s.out
    stages: [{name: work, filter: test-flaky}]
`, name))
		const normal, high = 50000, 100
		b.CreateTopic(t, name+".in", 4)
		b.CreateTopic(t, name+".high", 4)
		b.Produce(t, name+".in", jobs(normal, func(i int) string { return fmt.Sprintf("n-%d", i%100) }, func(int) int { return 0 }))
		hi := jobs(high, func(i int) string { return fmt.Sprintf("h-%d", i%10) }, func(int) int { return 0 })
		for i := range hi {
			hi[i].Value = fmt.Appendf(nil, `{"k":"h-%d","seq":%d}`, i%10, normal+i)
		}
		b.Produce(t, name+".high", hi)
		testkit.Run(t, b, plan, testkit.RunOptions{})
		testkit.Eventually(t, 2*time.Minute, func() bool {
			n := 0
			for _, s := range runsOf(name) {
				if s >= normal {
					n++
				}
			}
			return n == high
		}, "high-priority records did not all run")
		order := runsOf(name)
		lastHigh := 0
		for i, s := range order {
			if s >= normal {
				lastHigh = i
			}
		}
		normalBefore := lastHigh + 1 - high
		t.Logf("%s: all %d high-priority records ran after %d of %d normal ones", b.Name, high, normalBefore, normal)
		if normalBefore >= normal/10 {
			t.Fatalf("%d normal records ran before the last high-priority one; want fewer than %d (10%%)", normalBefore, normal/10)
		}
	})
}

func TestDedup_an_idempotency_key_is_processed_once_also_across_a_restart(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		name := "dedup-" + testkit.Unique()
		plan := testkit.LoadYAML(t, flakyPlan(t, name, "dedup: {key: .seq, window: 1h}"))
		rec := func(seq int) testkit.Record {
			return testkit.Record{Key: []byte("k"), Value: fmt.Appendf(nil, `{"k":"k","seq":%d}`, seq)}
		}
		r := testkit.Run(t, b, plan, testkit.RunOptions{})
		b.Produce(t, name+".in", []testkit.Record{rec(1), rec(2), rec(1), rec(3), rec(2)})
		testkit.Eventually(t, time.Minute, func() bool {
			return b.GroupLag(t, "millrace."+name+".flaky", name+".in") == 0
		}, "stage did not commit its input")
		if got := seqsOf(t, b.ReadAll(t, name+".out")); !slices.Equal(got, []int{1, 2, 3}) {
			t.Fatalf("output seqs %v, want [1 2 3]: duplicates must be skipped", got)
		}
		if err := r.Stop(); err != nil {
			t.Fatal(err)
		}

		// A new engine (a restarted stage) restores the keys from Kafka.
		testkit.Run(t, b, plan, testkit.RunOptions{})
		b.Produce(t, name+".in", []testkit.Record{rec(2), rec(4), rec(1)})
		testkit.Eventually(t, time.Minute, func() bool {
			return b.GroupLag(t, "millrace."+name+".flaky", name+".in") == 0
		}, "restarted stage did not commit its input")
		if got := seqsOf(t, b.ReadAll(t, name+".out")); !slices.Equal(got, []int{1, 2, 3, 4}) {
			t.Fatalf("output seqs after restart %v, want [1 2 3 4]", got)
		}
	})
}

func seqsOf(t *testing.T, recs []testkit.Record) []int {
	t.Helper()
	var out []int
	for _, j := range decode(t, recs) {
		out = append(out, j.Seq)
	}
	return out
}
