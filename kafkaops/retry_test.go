package kafkaops

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/millrace/millrace/internal/kfake"
	"github.com/millrace/millrace/pipeline"
)

// A produce request the broker applies and then answers REQUEST_TIMED_OUT
// (a slow replica, a loaded broker) is retried by the client; the
// operations that write records (produce, copy) must not write them twice.
// Their producers are idempotent: the broker drops the retried batch by
// its producer id and sequence (KIP-98).
func TestWrites_are_not_doubled_by_a_retried_produce(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "src", "dst"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl := Cluster{Brokers: c.ListenAddrs(), ConnectTimeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	timedOut := func(topic string) *kfake.FaultHandle {
		return c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Err: kerr.RequestTimedOut})
	}
	values := func(topic string) []string {
		t.Helper()
		client, err := cl.Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		var got []string
		if err := scan(ctx, client, topic, nil, func(r *Record) (bool, error) {
			got = append(got, string(r.Value))
			return true, nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
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
	if got := values("src"); len(got) != 3 {
		t.Fatalf("produce wrote %q, want a, b and c once each", got)
	}

	f = timedOut("dst")
	if res, err := CopyRange(ctx, CopyOptions{Cluster: cl, From: "src", To: "dst"}); err != nil || res.Copied != 3 {
		t.Fatalf("CopyRange = %+v, %v; want 3 copied", res, err)
	}
	if f.Hits() != 1 {
		t.Fatalf("the fault answered %d produce requests, want 1", f.Hits())
	}
	if got := values("dst"); len(got) != 3 {
		t.Fatalf("copy wrote %q, want a, b and c once each", got)
	}
}
