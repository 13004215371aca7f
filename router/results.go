package router

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/jobs"
	"github.com/millrace/millrace/transport"
)

// emitter emits the job events of a stage of a pipeline with `results:`
// (docs/jobs.md): one per record settled for good, acked before the
// record's offset is committed. A stage that publishes outputs sends the
// event in the same batch as them (one produce round trip), but a stage
// that writes the pipeline's output topic sends it after their acks, with
// their places; a queue and one goroutine do that, as the producer's
// callback must not block (a goroutine per record grew a stack each).
type emitter struct {
	topic  string // <pipeline>.jobs
	stage  string
	n      int  // the stage's 1-based index
	output bool // the stage writes the pipeline's output topic
	pub    *transport.Publisher
	now    func() time.Time

	mu     sync.Mutex
	queue  []queued
	wake   chan struct{} // a token when the queue is not empty
	stop   chan struct{}
	closed bool
}

// queued is an event waiting for the emitter's goroutine, and the
// delivery it settles.
type queued struct {
	e jobs.Event
	d *transport.Delivery
}

// newEmitter is the emitter of stage s, nil when its pipeline keeps no
// results.
func newEmitter(s *stage) *emitter {
	r := s.plan.Results
	if r == nil {
		return nil
	}
	em := &emitter{topic: r.EventsTopic, stage: s.plan.Name, n: s.plan.Index + 1,
		output: s.plan.Last() && s.plan.Output != "", pub: s.out, now: s.recs.now,
		wake: make(chan struct{}, 1), stop: make(chan struct{})}
	if em.output {
		go em.run()
	}
	return em
}

// close stops the emitter's goroutine; the records of events still queued
// are handed out again (not committed).
func (em *emitter) close() {
	em.mu.Lock()
	defer em.mu.Unlock()
	if !em.closed {
		em.closed = true
		close(em.stop)
		for _, q := range em.queue {
			q.d.Redeliver()
		}
		em.queue = nil
	}
}

// event is the job event of msg's record, settled with the outcome st
// says.
func (em *emitter) event(msg *message.Message, st *handOut) jobs.Event {
	e := jobs.Event{Job: jobOf(msg), Stage: em.stage, N: em.n, At: em.now()}
	rec := consumedOf(msg)
	if v, ok := transport.LastHeader(rec, filters.HeaderLineage); ok {
		e.Lineage = string(v)
	}
	if v, ok := transport.LastHeader(rec, filters.HeaderReplays); ok {
		e.Replays, _ = strconv.Atoi(string(v))
	}
	if em.n == 1 && e.Lineage == "" {
		if v, ok := transport.LastHeader(rec, filters.HeaderReplyTo); ok {
			e.ReplyTo = string(v)
		}
		if v, ok := transport.LastHeader(rec, filters.HeaderCorrelationID); ok {
			e.CorrelationID = string(v)
		}
	}
	switch {
	case st.quarantined:
		e.Outcome, e.Origin = jobs.Quarantined, recordString(msg)
		if st.failure != nil {
			e.Error = st.failure.Error()
		}
	case st.skipped:
		e.Outcome = jobs.Skipped
	default:
		e.Outcome, e.Outputs = jobs.Done, st.outputs
	}
	return e
}

// record is e as a record of the events topic.
func (em *emitter) record(e jobs.Event) *sarama.ProducerMessage {
	return &sarama.ProducerMessage{Topic: em.topic, Key: sarama.StringEncoder(e.Job), Value: sarama.ByteEncoder(e.Marshal())}
}

// located adds the places of a last stage's outputs, acked, to e.
func (em *emitter) located(e *jobs.Event, outs []*sarama.ProducerMessage) {
	if !em.output || e.Outcome != jobs.Done {
		return
	}
	for _, o := range outs {
		e.Results = append(e.Results, jobs.Location{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset})
	}
}

// afterAck emits e, with the places of outs, now acked, and settles d:
// Ack when the event is acked too, else Redeliver. It is called on the
// producer's goroutine: it only queues.
func (em *emitter) afterAck(e jobs.Event, outs []*sarama.ProducerMessage, d *transport.Delivery) {
	em.located(&e, outs)
	em.enqueue(queued{e, d})
}

// eventRetry is how long the emitter waits to write an event again that
// the broker refused (an outage): the record stays unsettled meanwhile,
// so it is not committed, and its outputs are not published again.
var eventRetry = time.Second

// sendAfterAck writes e, the event of a record whose outputs are acked,
// and returns once the broker acked it, trying again every eventRetry
// while the broker refuses it, as the emitter does for a stage that does
// not wait: handing the record out again would publish its outputs again.
// It returns an error at once for an event the broker can never take
// (transport.RecordFault), else when ctx ends (the hand-out is cancelled:
// the stage stops or loses the partition), with the broker's last refusal.
func (em *emitter) sendAfterAck(ctx context.Context, e jobs.Event) error {
	for {
		err := em.pub.Send(em.topic, []*sarama.ProducerMessage{em.record(e)})
		if err == nil {
			return nil
		}
		err = fmt.Errorf("cannot write the job event to %s: %w", em.topic, err)
		if transport.RecordFault(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w; gave up: %w", err, cmp.Or(transport.Cause(ctx), ctx.Err()))
		case <-time.After(eventRetry):
		}
	}
}

// enqueue queues q for the emitter's goroutine; on a closed emitter the
// record is handed out again instead.
func (em *emitter) enqueue(q queued) {
	em.mu.Lock()
	if em.closed {
		em.mu.Unlock()
		q.d.Redeliver()
		return
	}
	em.queue = append(em.queue, q)
	em.mu.Unlock()
	select {
	case em.wake <- struct{}{}:
	default:
	}
}

// run sends the queued events until the emitter closes.
func (em *emitter) run() {
	var batch []queued
	for {
		select {
		case <-em.stop:
			return
		case <-em.wake:
		}
		em.mu.Lock()
		batch, em.queue = em.queue, batch[:0]
		em.mu.Unlock()
		for _, q := range batch {
			if err := em.pub.SendAsync(em.topic, []*sarama.ProducerMessage{em.record(q.e)}, func(err error) {
				if err != nil {
					time.AfterFunc(eventRetry, func() { em.enqueue(q) })
					return
				}
				q.d.Ack()
			}); err != nil {
				q.d.Redeliver() // the publisher is closed
			}
		}
		clear(batch)
	}
}

// resultsMiddleware emits the job event of each record settled for good
// without its filter's outputs: quarantined or skipped by dedup (the
// handler writes the event of a record the filter processed, with its
// outputs: stage.handle). It sits in the status slot, outside quarantine,
// so that it sees quarantined records after their copy is acked. If the
// event cannot be written the record is handed out again (not as another
// attempt): its event is never lost.
func resultsMiddleware(em *emitter) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			out, err := h(msg)
			if err != nil {
				return out, err
			}
			st := stateOf(msg)
			if st == nil || !st.quarantined && !st.skipped {
				return out, nil // the handler wrote the event of a record it processed
			}
			e := em.event(msg, st)
			if perr := em.pub.Send(em.topic, []*sarama.ProducerMessage{em.record(e)}); perr != nil {
				return nil, &transient{err: fmt.Errorf("cannot write the job event to %s: %w", em.topic, perr)}
			}
			return out, nil
		}
	}
}
