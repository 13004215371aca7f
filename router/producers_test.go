package router_test

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"

	_ "github.com/millrace/millrace/filters/std" // jq
	"github.com/millrace/millrace/testkit"
)

// Each stage produces with a producer of its own: an idempotent producer
// has one produce request in flight per broker, so stages sharing one
// would wait for each other's round trips. The broker tells producers
// apart by their producer id, which every batch they write carries
// (KIP-98).
func TestEngine_each_stage_produces_with_its_own_producer(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		name := "own-producer-" + testkit.Unique()
		plan := testkit.LoadYAML(t, fmt.Sprintf(`version: 1
defaults: {partitions: 2}
pipelines:
  - name: %[1]s
    input: %[1]s.in
    output: %[1]s.out
    stages:
      - {name: a, filter: jq, config: {program: '.a = 1'}}
      - {name: b, filter: jq, config: {program: '.b = 1'}}
`, name))
		b.CreateTopic(t, name+".in", 2)
		testkit.Run(t, b, plan, testkit.RunOptions{})
		const n = 40
		in := make([]testkit.Record, n)
		for i := range in {
			in[i] = testkit.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, `{"i":%d}`, i)}
		}
		b.Produce(t, name+".in", in)
		b.Read(t, name+".out", n, 30*time.Second)

		c := b.Client(t)
		mid := plan.Pipelines[0].Stages[1].Input
		a, bb := producerIDs(t, c, mid), producerIDs(t, c, name+".out")
		if len(a) != 1 || len(bb) != 1 {
			t.Fatalf("stage a wrote %s with producer ids %v and stage b wrote %s.out with %v: want one each",
				mid, a, name, bb)
		}
		if a[0] == bb[0] {
			t.Errorf("stages a and b both produce with producer id %d: want a producer per stage", a[0])
		}
	})
}

// producerIDs returns the producer ids of the batches in every partition
// of topic, from its start to its end, sorted.
func producerIDs(t *testing.T, c sarama.Client, topic string) []int64 {
	t.Helper()
	parts, err := c.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[int64]bool{}
	for _, p := range parts {
		leader, err := c.Leader(topic, p)
		if err != nil {
			t.Fatal(err)
		}
		req := &sarama.FetchRequest{Version: 12, MinBytes: 1, MaxBytes: 1 << 20, SessionEpoch: -1}
		req.AddBlock(topic, p, 0, 1<<20, -1)
		resp, err := leader.Fetch(req)
		if err != nil {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		}
		block := resp.GetBlock(topic, p)
		if block == nil || block.Err != sarama.ErrNoError {
			t.Fatalf("fetch %s/%d: %v", topic, p, block)
		}
		for _, rs := range block.RecordsSet {
			if rs.RecordBatch != nil && !rs.RecordBatch.Control {
				ids[rs.RecordBatch.ProducerID] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(ids))
}
