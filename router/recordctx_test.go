package router

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A hand-out's context behaves as a cancelled context must, whether Done
// was asked for before or after the cancel, through value contexts built
// on it (as Watermill's router builds them) and for contexts derived from
// it; the router reads its cause with causeOf.
func TestRecordCtx_cancels_like_a_context(t *testing.T) {
	type k struct{}
	for _, early := range []bool{true, false} {
		c := &recordCtx{rec: Record{Topic: "t", Offset: 3}}
		ctx := context.WithValue(context.WithValue(c, k{}, 1), k{}, 2)
		child, stop := context.WithCancel(ctx)
		defer stop()
		var done <-chan struct{}
		if early {
			done = ctx.Done()
		}
		if ctx.Err() != nil || causeOf(ctx) != nil {
			t.Fatalf("early=%v: cancelled before cancel: %v, %v", early, ctx.Err(), causeOf(ctx))
		}
		c.cancel(errTimedOut)
		c.cancel(errors.New("second cause, ignored"))
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
		if !errors.Is(ctx.Err(), context.Canceled) || !errors.Is(causeOf(ctx), errTimedOut) || !timedOut(ctx) {
			t.Fatalf("early=%v: Err %v, cause %v; want Canceled and the timeout", early, ctx.Err(), causeOf(ctx))
		}
		if r, ok := RecordFrom(ctx); !ok || r.Offset != 3 {
			t.Fatalf("early=%v: RecordFrom = %v, %v", early, r, ok)
		}
	}
}
