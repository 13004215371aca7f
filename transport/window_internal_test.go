package transport

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
)

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
		if e.n != step.wantN {
			t.Fatalf("after %+v the record is on attempt %d, want %d", step.r, e.n, step.wantN)
		}
	}
}
