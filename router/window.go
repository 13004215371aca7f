package router

import (
	"context"
	"log/slog"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
)

type groupHandler struct {
	s     *Subscriber
	out   chan<- *message.Message
	topic string
	log   *slog.Logger
	stop  <-chan struct{}
}

func (h *groupHandler) Setup(sess sarama.ConsumerGroupSession) error {
	h.log.Debug("partitions assigned", "claims", sess.Claims()[h.topic], "generation", sess.GenerationID())
	return nil
}

func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	w := &window{
		h: h, sess: sess, claim: claim,
		waiting: map[string][]*entry{},
		results: make(chan result, h.s.cfg.MaxInFlight),
		retries: make(chan *entry, h.s.cfg.MaxInFlight),
		exit:    make(chan struct{}),
	}
	w.run()
	return nil
}

// entry is one fetched record, from fetch until its offset is committable.
type entry struct {
	rec     *sarama.ConsumerMessage
	msg     *message.Message
	cancel  context.CancelFunc
	keyed   bool
	acked   bool
	backoff time.Duration
}

type result struct {
	e     *entry
	acked bool
}

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

	results  chan result
	retries  chan *entry
	exit     chan struct{}
	stopping bool
}

func (w *window) run() {
	defer w.abandon()
	var deadline <-chan time.Time
	stop, revoked := w.h.stop, w.sess.Context().Done()
	for {
		var fetch <-chan *sarama.ConsumerMessage
		if !w.stopping && len(w.entries) < w.h.s.cfg.MaxInFlight {
			fetch = w.claim.Messages()
		}
		var out chan<- *message.Message
		var next *message.Message
		if !w.stopping && len(w.ready) > 0 {
			out, next = w.h.out, w.ready[0].msg
		}
		select {
		case rec, ok := <-fetch:
			if !ok {
				w.stopping = true
				break
			}
			w.add(rec)
		case out <- next:
			w.dispatched(w.ready[0])
			w.ready = w.ready[1:]
		case r := <-w.results:
			w.inFlight--
			if r.acked {
				w.ack(r.e)
			} else {
				w.nack(r.e)
			}
		case e := <-w.retries:
			w.ready = append(w.ready, e)
		case <-stop:
			stop, revoked = nil, nil
			w.stopping = true
			deadline = time.After(w.h.s.cfg.DrainTimeout)
		case <-revoked:
			stop, revoked = nil, nil
			w.stopping = true
			deadline = time.After(w.h.s.cfg.DrainTimeout)
		case <-deadline:
			w.h.log.Warn("records still in flight after the drain timeout; they will be redelivered",
				"partition", w.claim.Partition(), "in_flight", w.inFlight, "drain_timeout", w.h.s.cfg.DrainTimeout)
			return
		}
		if w.stopping && w.inFlight == 0 {
			return
		}
	}
}

// add takes a fetched record into the window.
func (w *window) add(rec *sarama.ConsumerMessage) {
	msg, err := Marshaler{}.Unmarshal(rec)
	if err != nil {
		w.h.log.Error("cannot decode record, skipping it", "partition", rec.Partition, "offset", rec.Offset, "err", err)
		return
	}
	e := &entry{rec: rec, msg: msg, keyed: rec.Key != nil, backoff: w.h.s.cfg.NackBackoff}
	w.setContext(e)
	w.entries = append(w.entries, e)
	if !e.keyed {
		w.ready = append(w.ready, e)
		return
	}
	key := string(rec.Key)
	if q, busy := w.waiting[key]; busy {
		w.waiting[key] = append(q, e)
		return
	}
	w.waiting[key] = nil
	w.ready = append(w.ready, e)
}

func (w *window) setContext(e *entry) {
	ctx, cancel := context.WithCancel(withRecord(context.Background(), Record{
		Topic: e.rec.Topic, Partition: e.rec.Partition, Offset: e.rec.Offset, Timestamp: e.rec.Timestamp}))
	if w.h.s.cfg.SettleFromContext {
		ctx = context.WithValue(ctx, settleKey{}, settler(func(acked bool) { w.report(result{e: e, acked: acked}) }))
	}
	e.msg.SetContext(ctx)
	e.cancel = cancel
}

func (w *window) report(r result) {
	select {
	case w.results <- r:
	case <-w.exit:
	}
}

type settleKey struct{}

type settler func(acked bool)

// Settle reports the outcome of a message handed out by a Subscriber with
// SettleFromContext: acked true finishes it, false hands it out again after
// a backoff. It reports whether ctx belonged to such a message. Call it
// once per hand-out, after the message's outputs were published.
func Settle(ctx context.Context, acked bool) bool {
	f, ok := ctx.Value(settleKey{}).(settler)
	if ok {
		f(acked)
	}
	return ok
}

// dispatched watches a handed-out message for its ack or nack, unless its
// outcome comes through Settle.
func (w *window) dispatched(e *entry) {
	w.inFlight++
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
		w.report(r)
	}()
}

// ack marks the record done, commits what can be committed and hands out
// the next record of its key.
func (w *window) ack(e *entry) {
	e.acked = true
	e.cancel()
	n := 0
	for n < len(w.entries) && w.entries[n].acked {
		n++
	}
	if n > 0 {
		last := w.entries[n-1].rec
		w.sess.MarkOffset(last.Topic, last.Partition, last.Offset+1, "")
		clear(w.entries[:n])
		w.entries = w.entries[n:]
	}
	if !e.keyed {
		return
	}
	key := string(e.rec.Key)
	q := w.waiting[key]
	if len(q) == 0 {
		delete(w.waiting, key)
		return
	}
	w.waiting[key] = q[1:]
	w.ready = append(w.ready, q[0])
}

// nack hands the record out again after its backoff; its key stays busy,
// so later records of the key wait behind it.
func (w *window) nack(e *entry) {
	if w.stopping {
		return
	}
	e.cancel()
	e.msg = e.msg.Copy()
	w.setContext(e)
	delay := e.backoff
	e.backoff = min(2*e.backoff, w.h.s.cfg.NackBackoffMax)
	time.AfterFunc(delay, func() {
		select {
		case w.retries <- e:
		case <-w.exit:
		}
	})
}

// abandon ends the window: watchers and timers stop, and handlers still
// running see their message context cancelled.
func (w *window) abandon() {
	close(w.exit)
	for _, e := range w.entries {
		if e.cancel != nil {
			e.cancel()
		}
	}
}
