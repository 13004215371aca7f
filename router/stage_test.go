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
)

// Job ids of records that came without one are documented as the
// name-based UUID of "kafka:topic/partition/offset"; jobID computes it by
// hand to avoid allocating, so check it against the uuid package.
func TestJobID_is_the_sha1_uuid_of_the_record_origin(t *testing.T) {
	for _, r := range []Record{
		{Topic: "orders", Partition: 0, Offset: 0},
		{Topic: "orders.enrich.retry.2", Partition: 17, Offset: 123456789012},
		{Topic: "t", Partition: 2147483647, Offset: 9223372036854775807},
	} {
		ctx := context.WithValue(context.Background(), recordKey{}, &r)
		want := uuid.NewSHA1(uuid.NameSpaceURL, []byte("kafka:"+r.String())).String()
		if got := jobID(ctx); got != want {
			t.Errorf("jobID(%s) = %s, want %s", r, got, want)
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
	cfg := NewProducerConfig("")
	mp := mocks.NewAsyncProducer(t, cfg)
	mp.ExpectInputAndFail(errors.New("broker down"))
	mp.ExpectInputAndSucceed()
	pub := &Publisher{producer: mp}
	pub.done.Add(2)
	go pub.collectSuccesses()
	go pub.collectErrors()
	defer func() {
		pub.producer.AsyncClose()
		pub.done.Wait()
	}()

	s := &stage{
		plan: pipeline.StagePlan{Pipeline: "p", Name: "s", Output: "p.out"},
		out:  pub, log: slog.New(slog.DiscardHandler),
		slots: newSlots(1, nil), lanes: map[string]int{}, tiers: map[string]int{},
		filter: filters.Func(func(_ context.Context, m *filters.Message) ([]*filters.Message, error) {
			return []*filters.Message{m}, nil
		}),
	}
	handler := s.settle(func(m *message.Message) ([]*message.Message, error) { return s.handle(m) })
	w := &window{wake: make(chan struct{}, 1)}
	e := &entry{w: w}
	for i, wantAcked := range []bool{false, true} {
		msg := message.NewMessage(newMessageID(), []byte(`{"n":1}`))
		msg.SetContext(&recordCtx{rec: Record{Topic: "p.in", Offset: 7}, e: e})
		if _, err := handler(msg); err != nil {
			t.Fatalf("hand-out %d: handler returned %v; a publish outcome must not be an error of the call", i+1, err)
		}
		select {
		case <-w.wake:
		case <-time.After(10 * time.Second):
			t.Fatalf("hand-out %d: never settled", i+1)
		}
		w.mu.Lock()
		got := w.inbox.results
		w.inbox = inbox{}
		w.mu.Unlock()
		want := result{e: e, acked: wantAcked, notAttempt: !wantAcked}
		if len(got) != 1 || got[0] != want {
			t.Fatalf("hand-out %d settled as %+v, want %+v (a failed publish is not an attempt)", i+1, got, want)
		}
	}
}

// A record handed out again because its outputs could not be published (a
// broker outage) repeats its attempt: the attempt number, which decides
// inline retries and goes into millrace-attempt, does not grow. A failure
// of the record's own does count.
func TestWindow_a_failed_publish_is_not_an_attempt(t *testing.T) {
	s := &Subscriber{cfg: SubscriberConfig{NackBackoff: time.Millisecond, NackBackoffMax: time.Millisecond, SettleFromContext: true}}
	w := &window{h: &groupHandler{s: s}, wake: make(chan struct{}, 1), exit: make(chan struct{})}
	defer close(w.exit)
	e := &entry{w: w, rec: &sarama.ConsumerMessage{Topic: "in", Offset: 3}, msg: message.NewMessage("id", nil)}
	w.setContext(e)
	w.makeReady(e)
	redeliver := func(r result) {
		t.Helper()
		w.ready = nil
		w.nack(r.e, r.delay, r.notAttempt)
		select {
		case <-w.wake:
		case <-time.After(10 * time.Second):
			t.Fatal("the record was not handed out again")
		}
		w.readInbox()
		if len(w.ready) != 1 || w.ready[0] != e {
			t.Fatalf("ready holds %d records after the backoff, want the record", len(w.ready))
		}
	}
	for _, step := range []struct {
		r     result
		wantN int
	}{
		{result{e: e, notAttempt: true}, 1}, // publish failed
		{result{e: e, notAttempt: true}, 1}, // and again
		{result{e: e}, 2},                   // the filter failed
		{result{e: e, notAttempt: true}, 2},
	} {
		redeliver(step.r)
		if e.del.N != step.wantN {
			t.Fatalf("after %+v the record is on attempt %d, want %d", step.r, e.del.N, step.wantN)
		}
	}
}
