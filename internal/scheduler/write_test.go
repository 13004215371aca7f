package scheduler

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/millrace/millrace/internal/kfake"
	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/transport"
)

// A state write the broker applies and answers REQUEST_TIMED_OUT (a
// loaded broker) is retried by the producer. It must be in the schedule
// topic once, with the fence at the topic's end: a second copy, written
// after another leader's takeover record, would put this leader's fence
// past that record, and it would go on firing beside the new leader.
func TestWrite_a_retried_state_write_is_in_the_topic_once(t *testing.T) {
	f, err := pipeline.Parse("test.yaml", []byte(`
version: 1
pipelines:
  - name: p
    input: p.in
    schedules:
      - {name: s, every: 1m, overlap: allow}
    stages:
      - {name: pass, filter: jq, config: {program: .}}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	plan := f.Plan()
	topic := plan.Scheduler.Topic
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := transport.ConnectTimeout(ctx, c.ListenAddrs(), transport.NewSaramaConfig("test"), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	pub, err := transport.NewPublisher(c.ListenAddrs(), transport.NewProducerConfig("test"))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	s, err := New(Config{Plan: plan, Brokers: c.ListenAddrs(), Client: client, Publisher: pub})
	if err != nil || s == nil {
		t.Fatalf("New = %v, %v", s, err)
	}
	s.fence, s.gen = 0, 1 // this leader read the empty topic

	fault := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic, Err: kerr.RequestTimedOut})
	if err := s.write(ctx, "p/s", State{Tick: time.Now()}); err != nil {
		t.Fatalf("write: %v", err)
	}
	if fault.Hits() != 1 {
		t.Fatalf("the fault answered %d produce requests, want 1", fault.Hits())
	}
	end, err := kafkaops.GetOffset(ctx, client, topic, 0, sarama.OffsetNewest)
	if err != nil {
		t.Fatal(err)
	}
	if end != 1 || s.fence != end {
		t.Fatalf("the schedule topic ends at %d and the fence is %d after one write; want both 1", end, s.fence)
	}
	if err := s.write(ctx, "p/s", State{Tick: time.Now()}); err != nil {
		t.Fatalf("a second write of the same leader: %v", err)
	}
}
