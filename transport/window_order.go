package transport

import (
	"time"

	"github.com/IBM/sarama"
)

// The order a window hands records out in: records of delayed topics
// when they are due, records of one key one at a time, and what becomes
// of a record once its hand-out is settled.

// dueTime reads the time a delayed record is due from its header.
func dueTime(rec *sarama.ConsumerMessage, name string) time.Time {
	for _, h := range rec.Headers {
		if string(h.Key) == name {
			t, err := time.Parse(time.RFC3339Nano, string(h.Value))
			if err == nil {
				return t
			}
		}
	}
	return time.Time{}
}

// armDue sets the timer for the first delayed record.
func (w *window) armDue() {
	d := time.Until(w.delayed[0].due)
	if w.timer == nil {
		w.timer = time.NewTimer(d)
	} else {
		w.timer.Reset(d)
	}
	w.due = w.timer.C
}

// releaseDue schedules the delayed records that are due, in order; a record
// not due yet holds back those behind it (they are due later, or were
// delayed behind it on purpose).
func (w *window) releaseDue() {
	n := 0
	for n < len(w.delayed) && time.Until(w.delayed[n].due) <= 0 {
		w.schedule(w.delayed[n])
		n++
	}
	clear(w.delayed[:n])
	w.delayed = w.delayed[n:]
	if len(w.delayed) > 0 {
		w.armDue()
	}
}

// makeReady queues e to be handed out, counting the hand-out now: once it
// is sent, the handler may read the count at once.
func (w *window) makeReady(e *entry) {
	if e.notAttempt {
		e.notAttempt = false
	} else {
		e.n++
	}
	w.ready = append(w.ready, e)
	w.h.s.ready.Add(1)
}

// schedule makes a record ready to hand out, or queues it behind the
// record of its key in flight.
func (w *window) schedule(e *entry) {
	rec := e.rec
	if !e.keyed {
		w.makeReady(e)
		return
	}
	key := string(rec.Key)
	if q, busy := w.waiting[key]; busy {
		w.waiting[key] = append(q, e)
		return
	}
	w.waiting[key] = nil
	w.makeReady(e)
}

// ack marks the record done, commits what can be committed and hands out
// the next record of its key.
func (w *window) ack(e *entry) {
	e.acked = true
	e.cancel(nil)
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
	q := w.waiting[string(e.rec.Key)] // no string allocated to look up
	if len(q) == 0 {
		delete(w.waiting, string(e.rec.Key))
		return
	}
	w.waiting[string(e.rec.Key)] = q[1:]
	w.makeReady(q[0])
}

// nack hands the record out again after its backoff; its key stays busy,
// so later records of the key wait behind it.
func (w *window) nack(e *entry, delay time.Duration, notAttempt bool) {
	if w.stopping {
		return
	}
	e.notAttempt = notAttempt
	e.cancel(nil)
	e.msg = e.msg.Copy()
	w.setContext(e)
	if delay <= 0 {
		delay = e.backoff
		e.backoff = min(2*e.backoff, w.h.s.cfg.NackBackoffMax)
	}
	time.AfterFunc(delay, func() {
		w.tell(func(in *inbox) { in.retries = append(in.retries, e) })
	})
}
