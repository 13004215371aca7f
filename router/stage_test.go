package router

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/IBM/sarama/mocks"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/transport"
)

// Job ids of records that came without one are documented as the
// name-based UUID of "kafka:topic/partition/offset"; jobID computes it by
// hand to avoid allocating, so check it against the uuid package.
func TestJobID_is_the_sha1_uuid_of_the_record_origin(t *testing.T) {
	for _, r := range []sarama.ConsumerMessage{
		{Topic: "orders", Partition: 0, Offset: 0},
		{Topic: "orders.enrich.retry.2", Partition: 17, Offset: 123456789012},
		{Topic: "t", Partition: 2147483647, Offset: 9223372036854775807},
	} {
		d := transport.NewDelivery(&r, 1, func(transport.Settlement) {})
		want := uuid.NewSHA1(uuid.NameSpaceURL, []byte("kafka:"+d.Origin().String())).String()
		if got := jobID(d); got != want {
			t.Errorf("jobID(%s) = %s, want %s", d.Origin(), got, want)
		}
	}
	a, b := jobID(context.Background()), jobID(context.Background())
	if a == b {
		t.Errorf("jobID without a record gave %s twice, want random ids", a)
	}
}

// A stage that does not wait for its outputs' acks settles the record from
// the producer's ack: a failed publish must hand the record out again (not
// ack it, and not as a new attempt), a later successful one acks it. The
// failure is injected with sarama's mock producer: a real broker cannot be
// made to refuse one produce request on cue.
func TestStage_outputs_published_without_waiting_settle_on_the_broker_ack(t *testing.T) {
	cfg := transport.NewProducerConfig("")
	mp := mocks.NewAsyncProducer(t, cfg)
	mp.ExpectInputAndFail(errors.New("broker down"))
	mp.ExpectInputAndSucceed()
	pub := transport.NewPublisherWith(mp, cfg)
	defer pub.Close()

	s := &stage{
		plan: pipeline.StagePlan{Pipeline: "p", Name: "s", Output: "p.out"},
		out:  pub, log: slog.New(slog.DiscardHandler),
		slots: newSlots(1, nil), lanes: map[string]int{}, recs: &records{stage: "s", tiers: map[string]int{}, now: time.Now},
		filter: filters.Func(func(_ context.Context, m *filters.Message) ([]*filters.Message, error) {
			return []*filters.Message{m}, nil
		}),
	}
	handler := settleMiddleware(settleConfig{records: s.recs, log: s.log})(s.handle)
	for i, want := range []transport.Settlement{{NotAttempt: true}, {Acked: true}} {
		settled := make(chan transport.Settlement, 1)
		d := transport.NewDelivery(&sarama.ConsumerMessage{Topic: "p.in", Offset: 7, Value: []byte(`{"n":1}`)}, 1,
			func(s transport.Settlement) { settled <- s })
		msg := message.NewMessage(transport.NewMessageID(), []byte(`{"n":1}`))
		msg.SetContext(d)
		if _, err := handler(msg); err != nil {
			t.Fatalf("hand-out %d: handler returned %v; a publish outcome must not be an error of the call", i+1, err)
		}
		select {
		case got := <-settled:
			if got != want {
				t.Fatalf("hand-out %d settled as %+v, want %+v (a failed publish is not an attempt)", i+1, got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("hand-out %d: never settled", i+1)
		}
	}
}
