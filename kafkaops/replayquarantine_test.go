package kafkaops_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/millrace/millrace/filters"
	_ "github.com/millrace/millrace/filters/std" // the pipelines' filters
	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/testkit"
	"github.com/millrace/millrace/transport"
)

func twoStagePipeline(t *testing.T, name string) *pipeline.PipelinePlan {
	t.Helper()
	plan := testkit.LoadYAML(t, fmt.Sprintf(`version: 1
pipelines:
  - name: %[1]s
    input: %[1]s.in
    partitions: 2
    stages:
      - {name: first, filter: log}
      - {name: work, filter: log}
`, name))
	pl, err := plan.Pipeline(name)
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

// TestReplayQuarantine_sends_each_record_back_once: a dry run counts and
// sends nothing; a run sends the selected records to their stage's input
// without the failure headers, then marks them in the progress topic; a
// second run sends none; records over --max-replays, envelopes and
// records of unknown stages are counted, never sent.
func TestReplayQuarantine_sends_each_record_back_once(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		name := "rq-" + testkit.Unique()
		pl := twoStagePipeline(t, name)
		b.CreateTopic(t, pl.Quarantine, 1)
		b.CreateTopic(t, name+".in", 2)
		b.CreateTopic(t, pl.Stages[1].Input, 2)
		at := "2026-01-01T10:00:00Z"
		b.Produce(t, pl.Quarantine, []testkit.Record{
			quarantined("a", `{"n":1}`, "work", "boom", at, at, "tag", "x", "tag", "y"),
			quarantined("b", `{"n":2}`, "first", "boom", at, at),
			quarantined("c", `{"n":3}`, "work", "boom", at, at, filters.HeaderReplays, "3"),
			quarantined("d", `{"cut":`, "work", "too large", at, at, filters.HeaderTruncated, "payload=2000000 key=1 headers=0"),
			quarantined("e", `{"n":5}`, "gone", "boom", at, at),
			quarantined("f", `{"n":6}`, "work", "other", at, at),
		})
		opts := kafkaops.ReplayQuarantineOptions{Cluster: kafkaops.Cluster{Brokers: b.Brokers, ConnectTimeout: 10 * time.Second},
			Pipeline: pl, ReplicationFactor: -1, DryRun: true}
		ctx := context.Background()
		check := func(what string, got kafkaops.ReplayResult, sent int, sentTo, skipped, failed string) {
			t.Helper()
			if got.Sent != sent || fmt.Sprint(got.SentTo) != sentTo || fmt.Sprint(got.Skipped) != skipped || fmt.Sprint(got.Failed) != failed {
				t.Fatalf("%s: %+v\nwant sent %d to %s, skipped %s, failed %s", what, got, sent, sentTo, skipped, failed)
			}
		}
		work, first := pl.Stages[1].Input, pl.Stages[0].Input
		dry, err := kafkaops.ReplayQuarantine(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		check("dry run", dry, 3, fmt.Sprintf("map[%s:1 %s:2]", first, work), "map[max replays reached:1]",
			"map[stage not in the pipelines file:1 "+kafkaops.FailTruncated+":1]")
		if n := len(b.ReadAll(t, work)); n != 0 {
			t.Fatalf("the dry run sent %d records", n)
		}

		opts.DryRun, opts.Limit = false, 2
		res, err := kafkaops.ReplayQuarantine(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		check("run with limit 2", res, 2, fmt.Sprintf("map[%s:1 %s:1]", first, work), "map[max replays reached:1 over --limit:1]",
			"map[stage not in the pipelines file:1 "+kafkaops.FailTruncated+":1]")
		sent := b.ReadAll(t, work)
		if len(sent) != 1 || string(sent[0].Key) != "a" || string(sent[0].Value) != `{"n":1}` {
			t.Fatalf("%s holds %d records, want record a", work, len(sent))
		}
		h := sent[0].HeaderList
		var names []string
		for _, x := range h {
			names = append(names, x.Key)
		}
		if fmt.Sprint(names) != fmt.Sprint([]string{filters.HeaderJob, "tag", "tag", filters.HeaderReplays, transport.MessageIDHeader}) ||
			h.Get(filters.HeaderReplays) != "1" || h.Get(transport.MessageIDHeader) == "id-a" {
			t.Fatalf("replayed headers %v: want the job and tags, millrace-replays 1 and a new message id", h)
		}

		opts.Limit = 0
		res, err = kafkaops.ReplayQuarantine(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		check("second run", res, 1, fmt.Sprintf("map[%s:1]", work), "map[already replayed:2 max replays reached:1]",
			"map[stage not in the pipelines file:1 "+kafkaops.FailTruncated+":1]")
		if n := len(b.ReadAll(t, pipeline.ReplayedTopic(name))); n != 3 {
			t.Fatalf("the progress topic holds %d records, want 3", n)
		}

		// quarantine ls counts them as replayed: a, b and f.
		counts, err := kafkaops.CountQuarantine(ctx, kafkaops.QuarantineOptions{Cluster: opts.Cluster, Topic: pl.Quarantine,
			Replayed: pipeline.ReplayedTopic(name)})
		replayed := map[string]int{}
		for _, c := range counts.Errors {
			replayed[c.Stage+"/"+c.Error] = c.Replayed
		}
		if err != nil || counts.Total != 6 || counts.Replayed != 3 ||
			fmt.Sprint(replayed) != "map[first/boom:1 gone/boom:0 work/boom:1 work/other:1 work/too large:0]" {
			t.Fatalf("CountQuarantine = %+v, %v; want 6 records, 3 replayed (first/boom, work/boom, work/other)", counts, err)
		}
	})
}

func TestReplayQuarantine_without_a_quarantine_topic_sends_nothing(t *testing.T) {
	b := testkit.Embedded(t)
	pl := twoStagePipeline(t, "rq-none-"+testkit.Unique())
	res, err := kafkaops.ReplayQuarantine(context.Background(), kafkaops.ReplayQuarantineOptions{
		Cluster: kafkaops.Cluster{Brokers: b.Brokers, ConnectTimeout: 10 * time.Second}, Pipeline: pl})
	if err != nil || res.Sent != 0 || len(res.Skipped)+len(res.Failed) != 0 {
		t.Fatalf("ReplayQuarantine = %+v, %v; want nothing", res, err)
	}
}
