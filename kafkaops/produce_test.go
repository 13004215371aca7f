package kafkaops_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/testkit"
)

// TestProduce_sends_each_line_with_a_job_id_and_its_key creates the topic,
// skips blank lines, counts lines whose key fails and sends the others
// with a millrace-job id each, then the given headers.
func TestProduce_sends_each_line_with_a_job_id_and_its_key(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		topic := "produce-" + testkit.Unique()
		var lineErrs []string
		opts := kafkaops.ProduceOptions{Cluster: kafkaops.Cluster{Brokers: b.Brokers, ConnectTimeout: 10 * time.Second},
			Topic: pipeline.Topic{Name: topic, Partitions: 3}, ReplicationFactor: -1,
			Lines: strings.NewReader("a\n\n  \nbad\nb\r\nc"),
			KeyOf: func(line []byte) ([]byte, error) {
				if string(line) == "bad" {
					return nil, errors.New("no key")
				}
				return append([]byte("k-"), line[0]), nil
			},
			Headers:   []kafkaops.Header{{Key: []byte("src"), Value: []byte("test")}},
			LineError: func(line int, err error) { lineErrs = append(lineErrs, fmt.Sprintf("%d: %v", line, err)) },
		}
		res, err := kafkaops.Produce(context.Background(), opts)
		if err != nil || res.Sent != 3 || res.Failed != 1 || res.Jobs != nil || res.FirstJob == "" {
			t.Fatalf("Produce = %+v, %v; want 3 sent, 1 failed (no job ids without Announce)", res, err)
		}
		if fmt.Sprint(lineErrs) != "[4: no key]" {
			t.Errorf("line errors %v, want line 4's", lineErrs)
		}
		if parts, err := b.Client(t).Partitions(topic); err != nil || len(parts) != 3 {
			t.Fatalf("topic created with %d partitions (%v), want 3", len(parts), err)
		}
		jobs := map[string]bool{}
		values := map[string]string{}
		for _, r := range b.ReadAll(t, topic) {
			h := r.HeaderList
			if len(h) != 2 || h[0].Key != filters.HeaderJob || h[1].Key != "src" || string(h[1].Value) != "test" {
				t.Fatalf("record %q has headers %v, want millrace-job then src=test", r.Value, h)
			}
			jobs[string(h[0].Value)] = true
			values[string(r.Value)] = string(r.Key)
			if string(r.Value) == "a" && string(h[0].Value) != res.FirstJob {
				t.Errorf("FirstJob %s, but the first line's record has job %s", res.FirstJob, h[0].Value)
			}
		}
		if fmt.Sprint(values) != "map[a:k-a b:k-b c:k-c]" || len(jobs) != 3 {
			t.Fatalf("records %q with %d job ids; want a, b, c keyed k-<line>, each its own job id", values, len(jobs))
		}
	})
}

// TestProduce_announces_each_job_before_its_record sends an announcement
// per record, keyed by its job id, to a topic it creates, and returns the
// job ids in the order sent.
func TestProduce_announces_each_job_before_its_record(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		topic, announced := "produce-"+testkit.Unique(), "announced-"+testkit.Unique()
		lines := strings.Repeat("x\n", 501) // two batches
		res, err := kafkaops.Produce(context.Background(), kafkaops.ProduceOptions{
			Cluster: kafkaops.Cluster{Brokers: b.Brokers, ConnectTimeout: 10 * time.Second},
			Topic:   pipeline.Topic{Name: topic, Partitions: 2}, ReplicationFactor: -1, Lines: strings.NewReader(lines),
			Headers: []kafkaops.Header{{Key: []byte("h"), Value: []byte("v")}},
			Announce: &kafkaops.Announce{Topic: pipeline.Topic{Name: announced, Partitions: 3},
				Value: func(job string, hs []kafkaops.Header) []byte { return []byte(job + "/" + string(hs[0].Value)) }},
		})
		if err != nil || res.Sent != 501 || len(res.Jobs) != 501 {
			t.Fatalf("Produce = %d sent, %d jobs, %v; want 501 and 501", res.Sent, len(res.Jobs), err)
		}
		if parts, err := b.Client(t).Partitions(announced); err != nil || len(parts) != 3 {
			t.Fatalf("announcement topic created with %d partitions (%v), want 3", len(parts), err)
		}
		sent := map[string]bool{}
		for _, r := range b.ReadAll(t, topic) {
			sent[string(r.HeaderList[0].Value)] = true
		}
		got := map[string]bool{}
		for _, r := range b.ReadAll(t, announced) {
			if string(r.Value) != string(r.Key)+"/v" {
				t.Fatalf("announcement %q keyed %q, want <job>/v", r.Value, r.Key)
			}
			got[string(r.Key)] = true
		}
		for _, id := range res.Jobs {
			if !sent[id] || !got[id] {
				t.Fatalf("job %s: sent %v, announced %v; want both", id, sent[id], got[id])
			}
		}
		if len(got) != 501 || len(sent) != 501 {
			t.Fatalf("%d announced, %d sent, want 501 each", len(got), len(sent))
		}
	})
}
