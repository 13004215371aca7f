package testkit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/millrace/millrace/filters"
	_ "github.com/millrace/millrace/filters/std"
	"github.com/millrace/millrace/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

type event struct {
	Key string `json:"k"`
	Seq int    `json:"seq"`
	A   int    `json:"a"`
	B   int    `json:"b"`
	C   int    `json:"c"`
}

func threeStages(name string) string {
	return fmt.Sprintf(`
version: 1
defaults: {partitions: 4}
pipelines:
  - name: %[1]s
    input: %[1]s.in
    output: %[1]s.out
    stages:
      - {name: one, filter: jq, config: {program: '.a = 1'}}
      - {name: two, filter: jq, config: {program: '.b = .a + 1'}}
      - {name: three, filter: jq, config: {program: '.c = .b + 1'}}
`, name)
}

func TestPipeline_three_stages_deliver_each_record_once_in_key_order(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		threeStagesDeliverOnceInKeyOrder(t, b, 10000, 100)
	})
}

// threeStagesDeliverOnceInKeyOrder runs n records of the given number of
// keys through threeStages on b and checks that each comes out once, in
// key order, having passed every stage.
func threeStagesDeliverOnceInKeyOrder(t *testing.T, b testkit.Backend, n, keys int) {
	name := "e2e-" + testkit.Unique()
	plan := testkit.LoadYAML(t, threeStages(name))
	in := make([]testkit.Record, n)
	for i := range in {
		k := fmt.Sprintf("key-%d", i%keys)
		in[i] = testkit.Record{Key: []byte(k), Value: fmt.Appendf(nil, `{"k":%q,"seq":%d}`, k, i)}
	}
	b.CreateTopic(t, name+".in", 4)
	b.Produce(t, name+".in", in)
	start := time.Now()
	testkit.Run(t, b, plan, testkit.RunOptions{})
	out := b.Read(t, name+".out", n, 2*time.Minute)
	t.Logf("%s: %d records through 3 stages in %s", b.Name, n, time.Since(start).Round(time.Millisecond))

	// Nothing more arrives once the stages are idle: exactly once.
	testkit.Eventually(t, 30*time.Second, func() bool {
		return b.GroupLag(t, "millrace."+name+".three", name+".three") == 0
	}, "last stage did not commit everything")
	out = b.ReadAll(t, name+".out")
	if len(out) != n {
		t.Fatalf("output holds %d records, want exactly %d", len(out), n)
	}
	seen := make(map[int]bool, n)
	last := map[string]int{}
	for _, r := range out {
		var e event
		if err := json.Unmarshal(r.Value, &e); err != nil {
			t.Fatalf("output %d/%d is not JSON: %v", r.Partition, r.Offset, err)
		}
		if string(r.Key) != e.Key {
			t.Fatalf("record seq %d has key %q, want %q", e.Seq, r.Key, e.Key)
		}
		if e.A != 1 || e.B != 2 || e.C != 3 {
			t.Fatalf("record seq %d missed a stage: %+v", e.Seq, e)
		}
		if seen[e.Seq] {
			t.Fatalf("record seq %d arrived twice", e.Seq)
		}
		seen[e.Seq] = true
		if prev, ok := last[e.Key]; ok && prev > e.Seq {
			t.Fatalf("key %s: seq %d arrived after seq %d", e.Key, e.Seq, prev)
		}
		last[e.Key] = e.Seq
		if r.Headers["millrace-job"] == "" || r.Headers["millrace-stage"] != "three" {
			t.Fatalf("record seq %d headers %v: want millrace-job and millrace-stage=three", e.Seq, r.Headers)
		}
	}
	if len(seen) != n {
		t.Fatalf("%d distinct records arrived, want %d", len(seen), n)
	}
}

func TestPipeline_permanent_failure_is_quarantined_and_the_stage_goes_on(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		name := "poison-" + testkit.Unique()
		plan := testkit.LoadYAML(t, fmt.Sprintf(`
version: 1
defaults: {partitions: 1}
pipelines:
  - name: %[1]s
    input: %[1]s.in
    output: %[1]s.out
    stages:
      - {name: parse, filter: jq, config: {program: '.ok = true'}}
`, name))
		testkit.Run(t, b, plan, testkit.RunOptions{})
		b.Produce(t, name+".in", []testkit.Record{
			{Key: []byte("a"), Value: []byte(`{"n":1}`)},
			{Key: []byte("b"), Value: []byte(`not json`), Headers: map[string]string{"trace": "t-1"}},
			{Key: []byte("c"), Value: []byte(`{"n":3}`)},
		})
		out := b.Read(t, name+".out", 2, time.Minute)
		// Different keys run concurrently: a and c may come out in either order.
		if keys := string(out[0].Key) + string(out[1].Key); keys != "ac" && keys != "ca" {
			t.Fatalf("output keys %q, want a and c", keys)
		}
		q := b.Read(t, name+".quarantine", 1, time.Minute)[0]
		if string(q.Key) != "b" || string(q.Value) != "not json" || q.Headers["trace"] != "t-1" {
			t.Fatalf("quarantined record changed: key %q value %q headers %v", q.Key, q.Value, q.Headers)
		}
		for h, want := range map[string]string{
			"millrace-stage": "parse", "millrace-attempt": "1", "millrace-origin": name + ".in/0/1",
		} {
			if q.Headers[h] != want {
				t.Errorf("header %s = %q, want %q", h, q.Headers[h], want)
			}
		}
		for _, h := range []string{"millrace-error", "millrace-job", "millrace-first-failure", "millrace-last-failure"} {
			if q.Headers[h] == "" {
				t.Errorf("header %s missing; headers %v", h, q.Headers)
			}
		}
		if !strings.Contains(q.Headers["millrace-error"], "JSON") {
			t.Errorf("error header %q does not say what was wrong", q.Headers["millrace-error"])
		}
	})
}

func init() {
	filters.MustRegister(filters.Spec{
		Name:    "test-panic-once",
		Summary: "Panics on the first record whose payload is \"boom\", then passes everything.",
		New: func(filters.Config) (filters.Filter, error) {
			var panicked atomic.Bool
			return filters.Func(func(_ context.Context, m *filters.Message) ([]*filters.Message, error) {
				if string(m.Payload) == "boom" && panicked.CompareAndSwap(false, true) {
					panic("filter bug")
				}
				return []*filters.Message{m}, nil
			}), nil
		},
	})
}

func TestPipeline_a_panicking_filter_fails_the_record_and_it_is_retried(t *testing.T) {
	b := testkit.Embedded(t)
	name := "panic-" + testkit.Unique()
	plan := testkit.LoadYAML(t, fmt.Sprintf(`
version: 1
pipelines:
  - name: %[1]s
    input: %[1]s.in
    output: %[1]s.out
    stages: [{name: risky, filter: test-panic-once}]
`, name))
	testkit.Run(t, b, plan, testkit.RunOptions{})
	b.Produce(t, name+".in", []testkit.Record{{Key: []byte("k"), Value: []byte("boom")}, {Key: []byte("k"), Value: []byte("after")}})
	out := b.Read(t, name+".out", 2, time.Minute)
	if string(out[0].Value) != "boom" || string(out[1].Value) != "after" {
		t.Fatalf("got %q then %q, want the panicked record retried first, then the next of its key", out[0].Value, out[1].Value)
	}
}
