package kafkaops_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/testkit"
	"github.com/millrace/millrace/transport"
)

// produceAt sends n records to each partition of topic, record i with
// timestamp base + i seconds.
func produceAt(t *testing.T, b testkit.Backend, topic string, parts int32, n int, base time.Time) {
	t.Helper()
	cfg := transport.NewProducerConfig("offsets-test")
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer(b.Brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var msgs []*sarama.ProducerMessage
	for part := int32(0); part < parts; part++ {
		for i := 0; i < n; i++ {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: part,
				Value: sarama.StringEncoder(fmt.Sprintf("p%d-%d", part, i)), Timestamp: base.Add(time.Duration(i) * time.Second)})
		}
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatal(err)
	}
}

func TestPlanOffsetReset_follows_kafka_reset_offsets_semantics(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		topic, group := "offsets-"+testkit.Unique(), "g-"+testkit.Unique()
		b.CreateTopic(t, topic, 2)
		base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		produceAt(t, b, topic, 2, 10, base)
		client := b.Client(t)
		targets := func(spec kafkaops.ResetSpec) []int64 {
			t.Helper()
			plan, err := kafkaops.PlanOffsetReset(context.Background(), client, group, []string{topic}, spec)
			if err != nil {
				t.Fatalf("%s: %v", spec, err)
			}
			var out []int64
			for _, r := range plan {
				out = append(out, r.Target)
			}
			return out
		}
		check := func(spec kafkaops.ResetSpec, want ...int64) {
			t.Helper()
			if got := targets(spec); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s: targets %v, want %v", spec, got, want)
			}
		}
		// No committed offset: current is the log start; shift-by refuses.
		plan, err := kafkaops.PlanOffsetReset(context.Background(), client, group, []string{topic}, kafkaops.ResetSpec{Kind: kafkaops.ToLatest})
		if err != nil {
			t.Fatal(err)
		}
		if r := plan[0]; r.Committed || r.Current != 0 || r.LogStart != 0 || r.LogEnd != 10 || r.Skip() != 10 {
			t.Fatalf("plan without commits: %+v", r)
		}
		if _, err := kafkaops.PlanOffsetReset(context.Background(), client, group, []string{topic}, kafkaops.ResetSpec{Kind: kafkaops.ShiftBy, Shift: -1}); err == nil {
			t.Fatal("shift-by without a committed offset should fail, as in Kafka's tool")
		}
		if err := kafkaops.CommitOffsets(client, group, map[string]map[int32]int64{topic: {0: 5, 1: 8}}); err != nil {
			t.Fatal(err)
		}
		check(kafkaops.ResetSpec{Kind: kafkaops.ToEarliest}, 0, 0)
		check(kafkaops.ResetSpec{Kind: kafkaops.ToLatest}, 10, 10)
		check(kafkaops.ResetSpec{Kind: kafkaops.ToTime, Time: base.Add(3 * time.Second)}, 3, 3)
		check(kafkaops.ResetSpec{Kind: kafkaops.ToTime, Time: base.Add(3500 * time.Millisecond)}, 4, 4)
		check(kafkaops.ResetSpec{Kind: kafkaops.ToTime, Time: base.Add(-time.Hour)}, 0, 0)
		check(kafkaops.ResetSpec{Kind: kafkaops.ToTime, Time: base.Add(time.Hour)}, 10, 10)
		check(kafkaops.ResetSpec{Kind: kafkaops.ToOffset, Offset: 7}, 7, 7)
		check(kafkaops.ResetSpec{Kind: kafkaops.ToOffset, Offset: 70}, 10, 10)
		check(kafkaops.ResetSpec{Kind: kafkaops.ToOffset, Offset: -3}, 0, 0)
		check(kafkaops.ResetSpec{Kind: kafkaops.ShiftBy, Shift: -2}, 3, 6)
		check(kafkaops.ResetSpec{Kind: kafkaops.ShiftBy, Shift: -7}, 0, 1)
		check(kafkaops.ResetSpec{Kind: kafkaops.ShiftBy, Shift: 4}, 9, 10)

		plan, err = kafkaops.PlanOffsetReset(context.Background(), client, group, []string{topic}, kafkaops.ResetSpec{Kind: kafkaops.ToTime, Time: base.Add(2 * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		if plan[0].Reprocess() != 3 || plan[1].Reprocess() != 6 {
			t.Fatalf("reprocess counts %d, %d; want 3, 6", plan[0].Reprocess(), plan[1].Reprocess())
		}
		if err := kafkaops.RequireInactive(client, group); err != nil {
			t.Fatal(err)
		}
		if err := kafkaops.ApplyOffsetReset(client, group, plan); err != nil {
			t.Fatal(err)
		}
		got, err := kafkaops.CommittedOffsets(client, group, topic)
		if err != nil {
			t.Fatal(err)
		}
		if got[0] != 2 || got[1] != 2 {
			t.Fatalf("committed after the reset: %v, want 2 and 2", got)
		}
	})
}

func TestRequireInactive_refuses_a_group_with_members(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		topic, group := "active-"+testkit.Unique(), "g-"+testkit.Unique()
		b.CreateTopic(t, topic, 1)
		cfg := transport.NewSaramaConfig("offsets-test")
		transport.SetGroupTimeouts(cfg, 6*time.Second, 3*time.Second)
		cg, err := sarama.NewConsumerGroup(b.Brokers, group, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ctx.Err() == nil {
				_ = cg.Consume(ctx, []string{topic}, idle{})
			}
		}()
		client := b.Client(t)
		testkit.Eventually(t, 60*time.Second, func() bool {
			_, n, err := kafkaops.GroupState(client, group)
			return err == nil && n == 1
		}, "the group never had a member")
		if err := kafkaops.RequireInactive(client, group); !errors.Is(err, kafkaops.ErrGroupActive) {
			t.Fatalf("RequireInactive = %v, want ErrGroupActive", err)
		}
		cancel()
		<-done
		cg.Close()
		testkit.Eventually(t, 30*time.Second, func() bool { return kafkaops.RequireInactive(client, group) == nil },
			"the group still has members after its consumer closed")
	})
}

type idle struct{}

func (idle) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (idle) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (idle) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for range c.Messages() {
	}
	return nil
}
