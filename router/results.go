package router

import (
	"fmt"
	"strconv"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/jobs"
	"github.com/millrace/millrace/transport"
)

// emitter emits the job events of a stage of a pipeline with `results:`
// (docs/jobs.md): one per record settled for good, after its outputs (or
// its quarantine copy) are acked and before its offset is committed.
type emitter struct {
	topic  string // <pipeline>.jobs
	stage  string
	n      int  // the stage's 1-based index
	output bool // the stage writes the pipeline's output topic
	pub    *transport.Publisher
	now    func() time.Time
}

// newEmitter is the emitter of stage s, nil when its pipeline keeps no
// results.
func newEmitter(s *stage) *emitter {
	r := s.plan.Results
	if r == nil {
		return nil
	}
	return &emitter{topic: r.EventsTopic, stage: s.plan.Name, n: s.plan.Index + 1,
		output: s.plan.Index == s.plan.Stages-1 && s.plan.Output != "", pub: s.out, now: s.recs.now}
}

// event is the job event of msg's record, settled with the outcome st
// says.
func (em *emitter) event(msg *message.Message, st *handOut) jobs.Event {
	e := jobs.Event{Job: jobOf(msg), Stage: em.stage, N: em.n, At: em.now(), Origin: recordString(msg)}
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
		e.Outcome = jobs.Quarantined
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

// afterAck emits e once outs are acked, then settles d: Ack when the event
// is acked too, else Redeliver. It runs on a goroutine of its own, since it
// is called on the producer's, which must not block.
func (em *emitter) afterAck(e jobs.Event, outs []*sarama.ProducerMessage, d *transport.Delivery) {
	em.located(&e, outs)
	go func() {
		if err := em.pub.SendAsync(em.topic, []*sarama.ProducerMessage{em.record(e)}, func(err error) {
			if err != nil {
				d.Redeliver()
				return
			}
			d.Ack()
		}); err != nil {
			d.Redeliver()
		}
	}()
}

// resultsMiddleware emits the job event of each record its handler settled
// for good that the handler does not settle itself on its outputs' acks
// (see stage.publishThenSettle): quarantined, skipped, dropped records and
// those of stages that publish synchronously. It sits in the status slot,
// outside quarantine, so that it sees quarantined records after their copy
// is acked. If the event cannot be written the record is handed out again
// (not as another attempt): its event is never lost.
func resultsMiddleware(em *emitter) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			out, err := h(msg)
			if err != nil {
				return out, err
			}
			st := stateOf(msg)
			if st == nil || st.tiered || st.d.SettlesLater() {
				return out, nil
			}
			e := em.event(msg, st)
			em.located(&e, st.published)
			if perr := em.pub.Send(em.topic, []*sarama.ProducerMessage{em.record(e)}); perr != nil {
				return nil, &transient{err: fmt.Errorf("cannot write the job event to %s: %w", em.topic, perr)}
			}
			return out, nil
		}
	}
}
