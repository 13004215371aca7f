package transport

import (
	"context"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
)

// Delivery is one hand-out of a record to a handler by a [Subscriber] with
// SettleFromContext, and the one way that handler settles it. It is also
// the handed-out message's context: cancelled when the window gives the
// record up (a stop or rebalance past the drain timeout) or when the
// handler calls Cancel (the router does, past a stage's timeout), and
// carrying the record's origin (RecordFrom).
//
// The outermost middleware takes it with [DeliveryOf] and settles the
// hand-out exactly once:
//   - Ack: done; its offset may be committed once the records before it
//     are done too.
//   - RetryAfter: handed out again after a delay, as the next attempt.
//   - Redeliver: handed out again after the subscriber's backoff (100 ms
//     doubling to 10 s by default), as the same attempt: it failed for a
//     reason that is not its own (a broker outage).
//   - Fail: handed out again at once, as the same attempt, carrying err
//     (Fault): it failed for good although its handler succeeded (the
//     broker refused an output as too large), and the next hand-out says
//     so.
//
// A handler that settles later, from another goroutine (when its outputs
// are acknowledged), calls SettleLater(true) first. Once settled, the handle is
// the subscriber's again: the record may be handed out anew, so the
// handler must not use it any more. Between hand-outs the record's state
// (attempt, first failure, fault, uncertain outputs) is kept.
//
// It is one allocation per hand-out, where context.WithCancelCause and a
// chain of context.WithValue were seven; its done channel is made only
// when somebody asks for it (most filters never do). It is not a cancelCtx
// of package context, so context.Cause of it (or of a context built on it)
// is context.Canceled: read the cause with [Cause].
type Delivery struct {
	origin Record
	e      *entry // nil in a window without SettleFromContext
	later  bool
	local  any

	mu    sync.Mutex
	done  chan struct{} // nil until Done is called
	cause error         // non-nil once cancelled
}

// DeliveryOf returns the hand-out whose context ctx is (or is built on),
// if it comes from a Subscriber with SettleFromContext (or NewDelivery).
func DeliveryOf(ctx context.Context) (*Delivery, bool) {
	d, ok := ctx.Value(deliveryKey{}).(*Delivery)
	return d, ok
}

// Record returns the Kafka record, as it was read. Its bytes are shared:
// read them, never write into them.
func (d *Delivery) Record() *sarama.ConsumerMessage { return d.e.rec }

// Origin returns where the record was read.
func (d *Delivery) Origin() Record { return d.origin }

// Attempt is the number of this hand-out among the record's attempts in
// this window, from 1; a record handed out again by Redeliver or Fail
// repeats its attempt.
func (d *Delivery) Attempt() int { return d.e.n }

// FirstFailure is when a handler first noted a failure of the record (zero
// if none did).
func (d *Delivery) FirstFailure() time.Time { return d.e.firstFailure }

// NoteFailure records now as the record's first failure, unless one is
// recorded.
func (d *Delivery) NoteFailure(now time.Time) {
	if d.e.firstFailure.IsZero() {
		d.e.firstFailure = now
	}
}

// Fault returns, and forgets, the error the record's last hand-out was
// settled with by Fail (nil if none).
func (d *Delivery) Fault() error {
	err := d.e.fault
	d.e.fault = nil
	return err
}

// Uncertain is since when the record's outputs may have been published
// although no hand-out of it finished (zero: never): set by a handler
// whose publish failed, or that failed after publishing. A later hand-out
// reads it to look for those outputs before running the record again.
func (d *Delivery) Uncertain() time.Time { return d.e.uncertain }

// SetUncertain sets Uncertain (zero clears it).
func (d *Delivery) SetUncertain(t time.Time) { d.e.uncertain = t }

// Local returns what the handler attached to this hand-out with SetLocal.
func (d *Delivery) Local() any { return d.local }

// SetLocal attaches the handler's own state to this hand-out (for
// example a view of the record it built once); it goes with the hand-out.
func (d *Delivery) SetLocal(v any) { d.local = v }

// Ack settles the hand-out: the record is done.
func (d *Delivery) Ack() { d.e.report(result{e: d.e, acked: true}) }

// RetryAfter settles the hand-out: the record failed and is handed out
// again after delay (zero or less: after the subscriber's backoff), as its
// next attempt. Records of its key wait behind it.
func (d *Delivery) RetryAfter(delay time.Duration) {
	d.e.report(result{e: d.e, delay: max(delay, 0)})
}

// Redeliver settles the hand-out: the record is handed out again after the
// subscriber's backoff, as the same attempt (its failure was not its own).
func (d *Delivery) Redeliver() { d.e.report(result{e: d.e, notAttempt: true}) }

// Fail settles the hand-out: the record is handed out again at once, as
// the same attempt, with Fault returning err.
func (d *Delivery) Fail(err error) {
	d.e.report(result{e: d.e, notAttempt: true, fault: err, delay: time.Nanosecond})
}

// SettleLater(true) says the hand-out is settled later, from another
// goroutine, not when the handler returns (see SettlesLater). Call it
// before handing the settling to that goroutine; SettleLater(false) takes
// it back when that goroutine will not settle after all.
func (d *Delivery) SettleLater(later bool) { d.later = later }

// SettlesLater reports whether SettleLater was called.
func (d *Delivery) SettlesLater() bool { return d.later }

// Cancel cancels the hand-out's context with cause (nil: context.Canceled);
// only the first call counts.
func (d *Delivery) Cancel(cause error) {
	if cause == nil {
		cause = context.Canceled
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cause != nil {
		return
	}
	d.cause = cause
	if d.done != nil {
		close(d.done)
	}
}

// Cause returns the cause the hand-out whose context ctx is (or is built
// on) was cancelled with; for another context, context.Cause(ctx).
func Cause(ctx context.Context) error {
	if d, ok := ctx.Value(handOutKey{}).(*Delivery); ok {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.cause
	}
	return context.Cause(ctx)
}

// closedDone is the done channel of a hand-out cancelled before anybody
// asked for one.
var closedDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Deadline implements context.Context: a hand-out has none.
func (*Delivery) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done implements context.Context.
func (d *Delivery) Done() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done == nil {
		if d.cause != nil {
			d.done = closedDone
		} else {
			d.done = make(chan struct{})
		}
	}
	return d.done
}

// Err implements context.Context.
func (d *Delivery) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cause != nil {
		return context.Canceled
	}
	return nil
}

type (
	deliveryKey struct{}
	handOutKey  struct{}
)

// Value implements context.Context: RecordFrom, DeliveryOf and Cause read
// the hand-out through it.
func (d *Delivery) Value(key any) any {
	switch key.(type) {
	case recordKey:
		return &d.origin
	case deliveryKey:
		if d.e != nil {
			return d
		}
	case handOutKey:
		return d
	}
	return nil
}

// Settlement is how a hand-out made by NewDelivery was settled.
type Settlement struct {
	// Acked: Ack. Otherwise the record is handed out again: after Delay
	// (RetryAfter), after the backoff (Redeliver: Delay 0, NotAttempt),
	// or at once to be failed with Fault (Fail).
	Acked      bool
	Delay      time.Duration
	NotAttempt bool
	Fault      error
}

// NewDelivery returns a hand-out of rec on its attempt-th attempt that is
// not part of a Subscriber: settling it calls settled (on the settling
// goroutine). It is for running a handler outside a subscriber, and for
// tests of handlers and middleware.
func NewDelivery(rec *sarama.ConsumerMessage, attempt int, settled func(Settlement)) *Delivery {
	e := &entry{rec: rec, n: attempt, settled: settled}
	d := &Delivery{origin: originOf(rec), e: e}
	e.ctx = d
	return d
}

// originOf is where rec was read.
func originOf(rec *sarama.ConsumerMessage) Record {
	return Record{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Timestamp: rec.Timestamp}
}

// entry is one fetched record, from fetch until its offset is committable,
// with what the subscriber knows of its hand-outs (see Delivery).
type entry struct {
	rec   *sarama.ConsumerMessage
	msg   *message.Message
	w     *window
	keyed bool
	acked bool
	// notAttempt: the next hand-out repeats the last attempt (see result).
	notAttempt bool
	backoff    time.Duration
	due        time.Time // not before (records of delayed topics)

	ctx          *Delivery // the current hand-out
	n            int       // attempts handed out in this window
	firstFailure time.Time
	fault        error
	uncertain    time.Time
	// settled receives the settlement of an entry outside a window
	// (NewDelivery).
	settled func(Settlement)
}

// cancel cancels the current hand-out, if any, with cause.
func (e *entry) cancel(cause error) {
	if e.ctx != nil {
		e.ctx.Cancel(cause)
	}
}

type result struct {
	e     *entry
	acked bool
	delay time.Duration // before handing a nacked record out again; 0: backoff
	// notAttempt: the record failed for a reason that is not its own (its
	// outputs could not be published), so handing it out again does not
	// count as another attempt.
	notAttempt bool
	// fault: see Delivery.Fail.
	fault error
}
