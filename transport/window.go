package transport

import (
	"sync"
	"time"

	"github.com/IBM/sarama"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// window runs one claimed partition: it fetches records while fewer than
// MaxInFlight are outstanding, hands them out in per-key order, and marks
// the offset below the lowest record not acked yet.
type window struct {
	h     *groupHandler
	sess  sarama.ConsumerGroupSession
	claim sarama.ConsumerGroupClaim

	entries  []*entry            // outstanding, in offset order
	waiting  map[string][]*entry // per busy key: records queued behind the one in flight
	ready    []*entry            // to hand out, in order
	inFlight int                 // handed out, not yet acked or nacked

	delayed []*entry // records not due yet, in offset order
	timer   *time.Timer
	due     <-chan time.Time

	// What other goroutines tell the window (outcomes of hand-outs,
	// records due again after a backoff, a stop) waits under mu in the
	// inbox; the first to find it empty sends the token on wake. The loop
	// selects on only three channels (fetch, hand out, wake): selecting on
	// more cost the stage several percent of its CPU.
	mu    sync.Mutex
	inbox inbox
	spare []result
	wake  chan struct{}

	exit      chan struct{}
	stopping  bool
	cut       bool // the drain timed out: records in flight were cancelled
	ordered   bool
	dueHeader string
	high      int64 // highest offset handed out
}

// pick returns the index in ready of the record to hand out next, or -1.
// While stopping, only records below the highest offset handed out are:
// finishing them lets the commit pass every record that was finished, so
// a graceful stop leaves nothing done-but-uncommitted to redo.
func (w *window) pick() int {
	if w.cut {
		return -1
	}
	if !w.stopping {
		if len(w.ready) > 0 {
			return 0
		}
		return -1
	}
	for i, e := range w.ready {
		if e.rec.Offset < w.high {
			return i
		}
	}
	return -1
}

// DrainGrace is how long a window whose drain timed out waits, after
// cancelling the records still in flight, for their filter calls to
// return before it gives its partition up.
const DrainGrace = 5 * time.Second

// inbox is what the window's goroutine has been told since it last looked.
type inbox struct {
	results []result
	retries []*entry // due to be handed out again
	stop    bool     // the subscriber stops, or the session ended
	woken   bool     // the token is on wake, or being taken
}

// tell records what f writes into the inbox and wakes the window.
func (w *window) tell(f func(in *inbox)) {
	w.mu.Lock()
	f(&w.inbox)
	wake := !w.inbox.woken
	w.inbox.woken = true
	w.mu.Unlock()
	if wake {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

func (w *window) run() {
	defer w.abandon()
	var deadline <-chan time.Time
	go func() {
		select {
		case <-w.h.stop:
		case <-w.sess.Context().Done():
		case <-w.exit:
			return
		}
		w.tell(func(in *inbox) { in.stop = true })
	}()
	for {
		w.handOutNow()
		var fetch <-chan *sarama.ConsumerMessage
		if !w.stopping && len(w.entries) < w.h.s.cfg.MaxInFlight {
			fetch = w.claim.Messages()
		}
		var out chan<- *message.Message
		var next *message.Message
		i := w.pick()
		if i >= 0 {
			out, next = w.h.out, w.ready[i].msg
		}
		select {
		case rec, ok := <-fetch:
			if !ok {
				w.stopping = true
				break
			}
			w.add(rec)
			w.fetchMore(fetch)
		case out <- next:
			w.handedOut(i)
		case <-w.wake:
			if w.readInbox() && deadline == nil {
				w.stopping = true
				deadline = time.After(w.h.s.cfg.DrainTimeout)
			}
		case <-w.due:
			w.due = nil
			w.releaseDue()
		case <-deadline:
			if w.cut {
				w.h.log.Error("filter calls still running after their records were cancelled; the member that takes the "+
					"partition over may run them at the same time", "partition", w.claim.Partition(), "in_flight", w.inFlight,
					"drain_timeout", w.h.s.cfg.DrainTimeout, "grace", DrainGrace)
				return
			}
			deadline = w.cutDrain()
		}
		if w.stopping && w.inFlight == 0 && w.pick() < 0 {
			return
		}
	}
}

// cutDrain ends a drain that timed out: it cancels what is still running
// and returns when to stop waiting for the calls to return, so that no
// record of this partition is still being worked on when another member
// gets it.
func (w *window) cutDrain() <-chan time.Time {
	w.h.log.Warn("records still in flight after the drain timeout; cancelling them, they will be redelivered",
		"partition", w.claim.Partition(), "in_flight", w.inFlight, "drain_timeout", w.h.s.cfg.DrainTimeout)
	w.cut = true
	for _, e := range w.entries {
		e.cancel(nil)
	}
	return time.After(DrainGrace)
}

// fetchMore takes the records already fetched, as long as the window has
// room, without going back to the select loop for each.
func (w *window) fetchMore(fetch <-chan *sarama.ConsumerMessage) {
	for !w.stopping && len(w.entries) < w.h.s.cfg.MaxInFlight {
		select {
		case rec, ok := <-fetch:
			if !ok {
				w.stopping = true
				return
			}
			w.add(rec)
		default:
			return
		}
	}
}

// handOutNow hands out ready records for as long as a handler is waiting
// to take one, without a select over all the window's channels per record.
func (w *window) handOutNow() {
	for {
		i := w.pick()
		if i < 0 {
			return
		}
		select {
		case w.h.out <- w.ready[i].msg:
			w.handedOut(i)
		default:
			return
		}
	}
}

// handedOut takes ready[i], just sent to the handlers, out of ready.
func (w *window) handedOut(i int) {
	w.h.s.ready.Add(-1)
	w.dispatched(w.ready[i])
	if i == 0 {
		w.ready[0] = nil
		w.ready = w.ready[1:]
		return
	}
	w.ready = append(w.ready[:i], w.ready[i+1:]...)
}

// readInbox takes what the window was told since it last looked (the
// token on wake was just taken) and reports whether it was told to stop.
func (w *window) readInbox() bool {
	w.mu.Lock()
	in := w.inbox
	w.inbox = inbox{results: w.spare[:0], stop: in.stop}
	w.mu.Unlock()
	for i, r := range in.results {
		w.inFlight--
		w.h.s.inFlight.Add(-1)
		if r.acked {
			w.ack(r.e)
		} else {
			r.e.fault = r.fault
			w.nack(r.e, r.delay, r.notAttempt)
		}
		in.results[i] = result{}
	}
	w.spare = in.results[:0]
	for _, e := range in.retries {
		w.makeReady(e)
	}
	return in.stop
}

// add takes a fetched record into the window.
func (w *window) add(rec *sarama.ConsumerMessage) {
	if f := w.h.s.cfg.Fetched; f != nil {
		f()
	}
	var msg *message.Message
	if w.h.s.cfg.SettleFromContext {
		// The engine's stages read the record itself (see input): the
		// message carries only its id and payload.
		id, _ := LastHeader(rec, wkafka.UUIDHeaderKey)
		msg = message.NewMessage(string(id), rec.Value)
	} else {
		msg = Marshaler{}.decode(rec)
	}
	e := &entry{rec: rec, msg: msg, w: w, keyed: w.ordered && rec.Key != nil, backoff: w.h.s.cfg.NackBackoff}
	w.setContext(e)
	w.entries = append(w.entries, e)
	if name := w.dueHeader; name != "" {
		e.due = dueTime(rec, name)
		if len(w.delayed) > 0 || time.Until(e.due) > 0 {
			w.delayed = append(w.delayed, e)
			if len(w.delayed) == 1 {
				w.armDue()
			}
			return
		}
	}
	w.schedule(e)
}

func (w *window) setContext(e *entry) {
	d := &Delivery{origin: originOf(e.rec)}
	if w.h.s.cfg.SettleFromContext {
		d.e = e
	}
	e.msg.SetContext(d)
	e.ctx = d
}

// report hands the outcome of a hand-out to the window's goroutine (or,
// outside a window, to the settled callback).
func (e *entry) report(r result) {
	if e.w == nil {
		e.settled(Settlement{Acked: r.acked, Delay: r.delay, NotAttempt: r.notAttempt, Fault: r.fault})
		return
	}
	e.w.tell(func(in *inbox) { in.results = append(in.results, r) })
}

// dispatched watches a handed-out message for its ack or nack, unless its
// outcome comes through Settle.
func (w *window) dispatched(e *entry) {
	w.inFlight++
	w.h.s.inFlight.Add(1)
	w.high = max(w.high, e.rec.Offset)
	if w.h.s.cfg.SettleFromContext {
		return
	}
	msg := e.msg
	go func() {
		r := result{e: e}
		select {
		case <-msg.Acked():
			r.acked = true
		case <-msg.Nacked():
		case <-w.exit:
			return
		}
		e.report(r)
	}()
}

// abandon ends the window: watchers and timers stop, and handlers still
// running see their message context cancelled.
func (w *window) abandon() {
	close(w.exit)
	w.h.s.inFlight.Add(-int64(w.inFlight)) // their outcomes will not be read
	w.h.s.ready.Add(-int64(len(w.ready)))
	if w.timer != nil {
		w.timer.Stop()
	}
	for _, e := range w.entries {
		e.cancel(nil)
	}
}
