package router

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/transport"
)

// quarantineConfig configures quarantineMiddleware.
type quarantineConfig struct {
	topic   string // the pipeline's quarantine topic
	records *records
	pub     *transport.Publisher
	parks   *parking // nil unless the stage parks keys in retry tiers
	metrics *stageMetrics
	log     *slog.Logger
}

// quarantineMiddleware moves a record that failed for good (attempts
// exhausted, or a filters.Permanent error) to the pipeline's quarantine
// topic, unchanged (same key and payload, its headers in order) plus
// headers saying why, and returns no error so that the record is acked and
// the stage goes on. If the quarantine topic cannot be written the record
// is handed out again, never dropped; a copy too large to be written whole
// goes as an envelope (see envelope). It sits outside retry: poison must
// wrap retry, or the first failure would quarantine.
//
// The middleware keep their success path in a small closure and the
// failure path in a function of its own: a handler goroutine starts with a
// 2 KiB stack, and the frames of the failure paths made every record's
// goroutine grow (copy) its stack, 6% of a stage's CPU.
func quarantineMiddleware(cfg quarantineConfig) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			out, err := h(msg)
			if err == nil {
				return out, nil
			}
			return cfg.failed(msg, out, err)
		}
	}
}

func (cfg quarantineConfig) failed(msg *message.Message, out []*message.Message, err error) ([]*message.Message, error) {
	var ex *exhausted
	if stopping(msg) || !(errors.As(err, &ex) || filters.IsPermanent(err)) {
		return out, err
	}
	q := cfg.records.failed(msg, cfg.topic, err, -1)
	perr := cfg.pub.Send(cfg.topic, []*sarama.ProducerMessage{q})
	if transport.RecordFault(perr) {
		q = cfg.envelope(msg, q, err, perr)
		perr = cfg.pub.Send(cfg.topic, []*sarama.ProducerMessage{q})
	}
	if perr != nil {
		cfg.log.Error("cannot quarantine record; it will be retried", "err", perr, "record_err", err)
		return nil, &transient{err: perr}
	}
	cfg.parks.unpark(msg, cfg.records)
	cfg.metrics.count(func(sm *stageMetrics) prometheus.Counter { return sm.quarantined })
	if st := stateOf(msg); st != nil {
		st.quarantined, st.failure = true, err
	}
	cfg.log.Warn("record quarantined", "topic", cfg.topic, "origin", recordString(msg), "job", jobOf(msg),
		"attempt", cfg.records.attempt(msg), "err", err)
	return nil, nil
}

// envelopeKeep is how much of a payload, and at most of a key and of the
// headers, a quarantine envelope keeps.
const envelopeKeep = 64 << 10

// envelope is what goes to the quarantine in place of q, the quarantine
// copy of msg, when the broker or the producer refused q as too large (or
// invalid): the failure headers, the key and the headers of the record
// where they fit, the first envelopeKeep bytes of its payload, and
// HeaderTruncated with the original sizes. Replay refuses it; `quarantine
// show` shows it. Nothing is dropped without a trace, and the stage goes on.
func (cfg quarantineConfig) envelope(msg *message.Message, q *sarama.ProducerMessage, cause, refused error) *sarama.ProducerMessage {
	in := original(msg)
	payload := in.Payload
	if len(payload) > envelopeKeep {
		payload = payload[:envelopeKeep]
	}
	key := in.Key
	if len(key) > envelopeKeep {
		key = key[:envelopeKeep]
	}
	var hs []sarama.RecordHeader
	size := 0
	for _, h := range q.Headers {
		size += len(h.Key) + len(h.Value)
	}
	for _, h := range q.Headers {
		switch name := string(h.Key); {
		case name == filters.HeaderError:
			h.Value = []byte(fmt.Sprintf("%s (quarantined truncated: %v)", cause, refused))
		case size > envelopeKeep && !strings.HasPrefix(name, "millrace-") && name != transport.MessageIDHeader:
			continue // the record's own headers do not fit either
		}
		hs = append(hs, h)
	}
	hs = append(hs, header(filters.HeaderTruncated, sizes(in)))
	e := &sarama.ProducerMessage{Topic: q.Topic, Headers: hs, Value: sarama.ByteEncoder(payload)}
	if key != nil {
		e.Key = sarama.ByteEncoder(key)
	}
	cfg.log.Error("record too large for the quarantine; quarantining an envelope with its first bytes",
		"origin", recordString(msg), "err", refused)
	return e
}
