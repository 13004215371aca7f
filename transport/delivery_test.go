package transport_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/millrace/millrace/transport"
)

// A hand-out's context behaves as a cancelled context must, whether Done
// was asked for before or after the cancel, through value contexts built
// on it (as Watermill's router builds them) and for contexts derived from
// it; its cause is read with Cause, and the first cause wins.
func TestDelivery_cancels_like_a_context(t *testing.T) {
	type k struct{}
	errCause := errors.New("the cause")
	for _, early := range []bool{true, false} {
		d := transport.NewDelivery(&sarama.ConsumerMessage{Topic: "t", Offset: 3}, 1, func(transport.Settlement) {})
		ctx := context.WithValue(context.WithValue(d, k{}, 1), k{}, 2)
		child, stop := context.WithCancel(ctx)
		defer stop()
		var done <-chan struct{}
		if early {
			done = ctx.Done()
		}
		if ctx.Err() != nil || transport.Cause(ctx) != nil {
			t.Fatalf("early=%v: cancelled before cancel: %v, %v", early, ctx.Err(), transport.Cause(ctx))
		}
		d.Cancel(errCause)
		d.Cancel(errors.New("second cause, ignored"))
		if !early {
			done = ctx.Done()
		}
		select {
		case <-done:
		default:
			t.Fatalf("early=%v: Done not closed after cancel", early)
		}
		select {
		case <-child.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("early=%v: a derived context was not cancelled", early)
		}
		if !errors.Is(ctx.Err(), context.Canceled) || !errors.Is(transport.Cause(ctx), errCause) {
			t.Fatalf("early=%v: Err %v, cause %v; want Canceled and the cause", early, ctx.Err(), transport.Cause(ctx))
		}
		if r, ok := transport.RecordFrom(ctx); !ok || r.Offset != 3 {
			t.Fatalf("early=%v: RecordFrom = %v, %v", early, r, ok)
		}
		if got, ok := transport.DeliveryOf(ctx); !ok || got != d {
			t.Fatalf("early=%v: DeliveryOf through value contexts = %v, %v", early, got, ok)
		}
	}
}

// Each way of settling a hand-out reaches the settlement as it was meant,
// and the record's state (first failure, fault, uncertain outputs) is kept
// on it.
func TestDelivery_settles_each_way_once(t *testing.T) {
	var got []transport.Settlement
	d := transport.NewDelivery(&sarama.ConsumerMessage{Topic: "t"}, 2, func(s transport.Settlement) { got = append(got, s) })
	boom := errors.New("too large")
	d.Ack()
	d.RetryAfter(time.Second)
	d.RetryAfter(-time.Second)
	d.Redeliver()
	d.Fail(boom)
	want := []transport.Settlement{
		{Acked: true}, {Delay: time.Second}, {Delay: 0}, {NotAttempt: true}, {NotAttempt: true, Fault: boom, Delay: time.Nanosecond},
	}
	if len(got) != len(want) {
		t.Fatalf("settlements %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("settlement %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if d.Attempt() != 2 {
		t.Errorf("Attempt = %d, want 2", d.Attempt())
	}
	t0 := time.Unix(100, 0)
	d.NoteFailure(t0)
	d.NoteFailure(t0.Add(time.Hour))
	if !d.FirstFailure().Equal(t0) {
		t.Errorf("FirstFailure = %s, want the first one noted", d.FirstFailure())
	}
	d.SetUncertain(t0)
	if !d.Uncertain().Equal(t0) {
		t.Errorf("Uncertain = %s", d.Uncertain())
	}
	if d.SettleLater(true); !d.SettlesLater() {
		t.Error("SettlesLater false after SettleLater(true)")
	}
}
