package router

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
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

// A stage that waits for its outputs' acks (it deduplicates) and writes
// the pipeline's output topic sends the record's job event after the
// outputs' acks. A refused event is sent again, alone: handing the record
// out again would publish its outputs twice. If the hand-out ends first
// (the stage stops), the record is marked uncertain, so that the dedupe
// middleware looks for its outputs before running it again.
func TestStage_a_refused_job_event_is_sent_again_without_the_outputs(t *testing.T) {
	defer func(d time.Duration) { eventRetry = d }(eventRetry)
	eventRetry = time.Millisecond
	down := errors.New("broker down")
	newStage := func(outcomes ...error) (*stage, *sent) {
		pub, got := mockPublisher(t, 0, outcomes...)
		return &stage{
			plan: pipeline.StagePlan{Pipeline: "p", Name: "s", Output: "p.out"},
			out:  pub, log: quiet, recs: &records{stage: "s", tiers: map[string]int{}, now: time.Now},
			results: &emitter{topic: "p.jobs", stage: "s", n: 1, output: true, pub: pub, now: time.Now},
		}, got
	}
	topics := func(msgs []*sarama.ProducerMessage) (ts []string) {
		for _, m := range msgs {
			ts = append(ts, m.Topic)
		}
		return ts
	}
	outs := func() []*sarama.ProducerMessage {
		return []*sarama.ProducerMessage{{Topic: "p.out", Value: sarama.StringEncoder("out")}}
	}

	s, got := newStage(nil, down, down, nil)
	msg, d, _ := handOutOf(&sarama.ConsumerMessage{Topic: "p.in", Offset: 7, Value: []byte("in")}, 1)
	if err := s.publishNow(msg, d, outs()); err != nil {
		t.Fatalf("publishNow = %v, want the event written on its third try", err)
	}
	if ts := topics(got.take()); slices.Compare(ts, []string{"p.out", "p.jobs", "p.jobs", "p.jobs"}) != 0 {
		t.Fatalf("sent to %v, want the output once, then the event three times", ts)
	}
	if !d.Uncertain().IsZero() {
		t.Error("a record whose event was written is marked uncertain")
	}

	eventRetry = time.Hour
	s, got = newStage(nil, down)
	msg, d, _ = handOutOf(&sarama.ConsumerMessage{Topic: "p.in", Offset: 8, Value: []byte("in")}, 1)
	go func() {
		for len(got.take()) < 2 {
			time.Sleep(time.Millisecond)
		}
		d.Cancel(errors.New("the stage stops"))
	}()
	err := s.publishNow(msg, d, outs())
	var tr *transient
	if !errors.As(err, &tr) || !strings.Contains(err.Error(), "broker down") || !strings.Contains(err.Error(), "the stage stops") {
		t.Fatalf("publishNow = %v, want a transient error naming the refusal and the stop", err)
	}
	if d.Uncertain().IsZero() {
		t.Error("a record whose outputs are published and event is not is not marked uncertain")
	}
	if ts := topics(got.take()); slices.Compare(ts, []string{"p.out", "p.jobs"}) != 0 {
		t.Fatalf("sent to %v, want the output, then the event", ts)
	}
}
