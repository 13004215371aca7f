package kafkaops

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/internal/kfake"
	"github.com/millrace/millrace/pipeline"
)

// fakeKafka is a one-broker kfake cluster, seeded with topics of the
// given partitions, and the Cluster that reaches it.
type fakeKafka struct {
	*kfake.Cluster
	cl  Cluster
	ctx context.Context
}

func newFakeKafka(t *testing.T, partitions int32, topics ...string) *fakeKafka {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return &fakeKafka{Cluster: c, cl: Cluster{Brokers: c.ListenAddrs(), ConnectTimeout: 10 * time.Second}, ctx: ctx}
}

// values reads the values of topic's records, one partition after the other.
func (k *fakeKafka) values(t *testing.T, topic string) []string {
	t.Helper()
	client, err := k.cl.Connect(k.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var got []string
	if err := scan(k.ctx, client, topic, nil, func(r *Record) (bool, error) {
		got = append(got, string(r.Value))
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// A produce request the broker applies and then answers REQUEST_TIMED_OUT
// (a slow replica, a loaded broker) is retried by the client; the
// operations that write records (produce, copy) must not write them twice.
// Their producers are idempotent: the broker drops the retried batch by
// its producer id and sequence (KIP-98).
func TestWrites_are_not_doubled_by_a_retried_produce(t *testing.T) {
	k := newFakeKafka(t, 2, "src", "dst")
	cl, ctx := k.cl, k.ctx
	timedOut := func(topic string) *kfake.FaultHandle {
		return k.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Err: kerr.RequestTimedOut})
	}

	f := timedOut("src")
	res, err := Produce(ctx, ProduceOptions{Cluster: cl, Topic: pipeline.Topic{Name: "src", Partitions: 2},
		ReplicationFactor: -1, Lines: strings.NewReader("a\nb\nc\n")})
	if err != nil || res.Sent != 3 {
		t.Fatalf("Produce = %+v, %v; want 3 sent", res, err)
	}
	if f.Hits() != 1 {
		t.Fatalf("the fault answered %d produce requests, want 1", f.Hits())
	}
	if got := k.values(t, "src"); len(got) != 3 {
		t.Fatalf("produce wrote %q, want a, b and c once each", got)
	}

	f = timedOut("dst")
	if res, err := CopyRange(ctx, CopyOptions{Cluster: cl, From: "src", To: "dst"}); err != nil || res.Copied != 3 {
		t.Fatalf("CopyRange = %+v, %v; want 3 copied", res, err)
	}
	if f.Hits() != 1 {
		t.Fatalf("the fault answered %d produce requests, want 1", f.Hits())
	}
	if got := k.values(t, "dst"); len(got) != 3 {
		t.Fatalf("copy wrote %q, want a, b and c once each", got)
	}
}

// A batch the broker takes in part (it refuses the records of one
// partition for good) is counted as what it took: a user who runs the
// command again for the rest must not send the records already written.
func TestWrites_a_batch_taken_in_part_counts_what_was_written(t *testing.T) {
	k := newFakeKafka(t, 2, "src", "dst")
	cl, ctx := k.cl, k.ctx
	refuse := func(topic string) *kfake.FaultHandle {
		return k.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Partitions: []int32{1}, Err: kerr.MessageTooLarge, Count: -1})
	}
	lines := strings.Repeat("x\n", 20)

	f := refuse("src")
	res, err := Produce(ctx, ProduceOptions{Cluster: cl, Topic: pipeline.Topic{Name: "src", Partitions: 2},
		ReplicationFactor: -1, Lines: strings.NewReader(lines), Announce: &Announce{Topic: pipeline.Topic{Name: "jobs", Partitions: 1},
			Value: func(job string, _ []Header) []byte { return []byte(job) }}})
	if err == nil || f.Hits() == 0 {
		t.Fatalf("Produce = %+v, %v with partition 1 refusing; want an error", res, err)
	}
	f.Remove()
	if n := len(k.values(t, "src")); n == 0 || n == 20 || res.Sent != n || len(res.Jobs) != n {
		t.Fatalf("Produce counted %d sent (%d job ids) of a batch of 20 whose partition 0 took %d records", res.Sent, len(res.Jobs), n)
	}

	// Fill partition 1, then copy what src holds to dst, whose partition
	// 1 refuses.
	if _, err := Produce(ctx, ProduceOptions{Cluster: cl, Topic: pipeline.Topic{Name: "src", Partitions: 2},
		ReplicationFactor: -1, Lines: strings.NewReader(lines)}); err != nil {
		t.Fatal(err)
	}
	f = refuse("dst")
	cres, err := CopyRange(ctx, CopyOptions{Cluster: cl, From: "src", To: "dst"})
	if err == nil || f.Hits() == 0 {
		t.Fatalf("CopyRange = %+v, %v with partition 1 refusing; want an error", cres, err)
	}
	f.Remove()
	if n := len(k.values(t, "dst")); n == 0 || cres.Copied != n {
		t.Fatalf("CopyRange counted %d copied (%v); dst holds %d", cres.Copied, cres.PerPartition, n)
	}
}

// A quarantined record sent back to its stage whose progress mark the
// broker then refuses is counted as sent: the error says it was.
func TestWrites_a_replayed_record_whose_mark_fails_is_counted(t *testing.T) {
	f, err := pipeline.Parse("test.yaml", []byte(`
version: 1
pipelines:
  - name: p
    input: p.in
    stages:
      - {name: pass, filter: jq, config: {program: .}}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	pp, err := f.Plan().Pipeline("p")
	if err != nil {
		t.Fatal(err)
	}
	k := newFakeKafka(t, 1, pp.Quarantine, pp.Input)
	cl, ctx := k.cl, k.ctx
	p, err := cl.syncProducer()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: pp.Quarantine, Value: sarama.StringEncoder(`{"n":1}`),
		Headers: []sarama.RecordHeader{{Key: []byte(filters.HeaderStage), Value: []byte("pass")}}}); err != nil {
		t.Fatal(err)
	}
	fault := k.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: pipeline.ReplayedTopic("p"), Err: kerr.MessageTooLarge, Count: -1})
	res, err := ReplayQuarantine(ctx, ReplayQuarantineOptions{Cluster: cl, Pipeline: pp, ReplicationFactor: -1})
	if err == nil || fault.Hits() == 0 || !strings.Contains(err.Error(), "it was sent to "+pp.Input) {
		t.Fatalf("ReplayQuarantine = %+v, %v; want the error of the refused mark", res, err)
	}
	if res.Sent != 1 || res.SentTo[pp.Input] != 1 {
		t.Fatalf("ReplayQuarantine counted %d sent (%v) after sending the record; want 1 to %s", res.Sent, res.SentTo, pp.Input)
	}
}
