package router

import (
	"errors"
	"strconv"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/transport"
)

// A stage works on the Kafka record a message was handed out from (its
// transport.Delivery), not on the Watermill message's metadata: a record's
// headers are an ordered list that may repeat names (KIP-82), and a map
// cannot carry them. Routing state (the key, a pinned partition) is set on
// the records the stage writes, never read from headers, so an incoming
// header cannot steer a record.

// handOut is the stage's own state of one hand-out, attached to it
// (Delivery.SetLocal): the filter's view of the record, its dedup key and
// its place in the stage's watchdog. One allocation per hand-out.
type handOut struct {
	d        *transport.Delivery
	in       filters.Message
	built    bool   // in holds the view
	dedupKey string // set when the stage deduplicates and the record has a key
	keyed    bool

	// What became of the hand-out, for the status middleware.
	outputs     int   // records the filter returned
	quarantined bool  // the quarantine middleware quarantined it
	skipped     bool  // the dedupe middleware skipped it
	tiered      bool  // the retry middleware moved it to a retry tier
	failure     error // why it was quarantined

	// The watchdog's list of calls in progress (see watchdog).
	start           time.Time
	expired, warned bool
	prev, next      *handOut
}

// stateOf returns the stage's state of msg's hand-out, made on first use;
// nil when msg is not a hand-out of a Subscriber with SettleFromContext.
func stateOf(msg *message.Message) *handOut {
	d, ok := transport.DeliveryOf(msg.Context())
	if !ok {
		return nil
	}
	if h, ok := d.Local().(*handOut); ok {
		return h
	}
	h := &handOut{d: d}
	d.SetLocal(h)
	return h
}

// consumedOf returns the record msg was handed out from, or nil when msg
// is not a hand-out of a Subscriber with SettleFromContext.
func consumedOf(msg *message.Message) *sarama.ConsumerMessage {
	if d, ok := transport.DeliveryOf(msg.Context()); ok {
		return d.Record()
	}
	return nil
}

// keyOf returns the key of msg's record and whether it has one (an empty
// key is a key).
func keyOf(msg *message.Message) ([]byte, bool) {
	if rec := consumedOf(msg); rec != nil {
		return rec.Key, rec.Key != nil
	}
	return transport.MessageKey(msg)
}

// input is the filter's view of msg's record (see original), built once
// per hand-out: the filter may change it.
func input(msg *message.Message) *filters.Message {
	h := stateOf(msg)
	if h == nil {
		return original(msg)
	}
	if !h.built {
		h.in, h.built = *original(msg), true
	}
	return &h.in
}

// original is msg's record as it was read: its key, payload and headers as
// they are on the record (in order, repeats kept, values shared with it),
// less Watermill's message id header, which each record millrace writes
// gets anew. It is made afresh on each call.
func original(msg *message.Message) *filters.Message {
	rec := consumedOf(msg)
	if rec == nil { // a message that is not a hand-out of a window: its metadata
		key, _ := transport.MessageKey(msg)
		m := &filters.Message{Key: key, Payload: msg.Payload}
		for k, v := range msg.Metadata {
			m.Headers = append(m.Headers, filters.Header{Key: k, Value: []byte(v)})
		}
		return m
	}
	m := &filters.Message{Key: rec.Key, Payload: rec.Value}
	if len(rec.Headers) > 0 {
		m.Headers = make(filters.Headers, 0, len(rec.Headers)+1)
		for _, h := range rec.Headers {
			if h != nil && string(h.Key) != transport.MessageIDHeader {
				m.Headers = append(m.Headers, filters.Header{Key: transport.HeaderName(h.Key), Value: h.Value})
			}
		}
	}
	return m
}

// copyOf is the record msg was handed out from, for topic: the same key
// and payload, a new message id, its headers in order less those named in
// drop, then extra. With pin >= 0 it goes to that partition of topic.
func copyOf(msg *message.Message, topic string, drop map[string]bool, extra []sarama.RecordHeader, pin int32) *sarama.ProducerMessage {
	in := original(msg)
	hs := make([]sarama.RecordHeader, 0, 1+len(in.Headers)+len(extra))
	hs = append(hs, sarama.RecordHeader{Key: messageIDHeader, Value: []byte(transport.NewMessageID())})
	for _, h := range in.Headers {
		if !drop[h.Key] {
			hs = append(hs, sarama.RecordHeader{Key: transport.ReadOnlyBytes(h.Key), Value: h.Value})
		}
	}
	hs = append(hs, extra...)
	r := &sarama.ProducerMessage{Topic: topic, Headers: hs}
	if in.Key != nil {
		r.Key = sarama.ByteEncoder(in.Key)
	}
	if in.Payload != nil {
		r.Value = sarama.ByteEncoder(in.Payload)
	}
	if pin >= 0 {
		r.Key = transport.Pin(r.Key, pin)
	}
	return r
}

// messageIDHeader is transport.MessageIDHeader as header bytes (read only).
var messageIDHeader = []byte(transport.MessageIDHeader)

// header is a record header with a string value.
func header(name, value string) sarama.RecordHeader {
	return sarama.RecordHeader{Key: []byte(name), Value: []byte(value)}
}

// sizes describes the sizes of a record's parts, for HeaderTruncated.
func sizes(m *filters.Message) string {
	hb := 0
	for _, h := range m.Headers {
		hb += len(h.Key) + len(h.Value)
	}
	return "payload=" + strconv.Itoa(len(m.Payload)) + " key=" + strconv.Itoa(len(m.Key)) + " headers=" + strconv.Itoa(hb)
}

// records is what the middleware of a stage know of its records: the
// stage's name, its retry tier topics (topic → tier number, from 1) and
// the clock.
type records struct {
	stage string
	tiers map[string]int
	now   func() time.Time
}

// tierOf is the retry tier msg was read from (0: a stage input).
func (r *records) tierOf(msg *message.Message) int {
	o, _ := transport.RecordFrom(msg.Context())
	return r.tiers[o.Topic]
}

// attempt is the number of the attempt being made on msg: the attempts
// recorded in its header when it comes from a retry tier, plus its
// hand-outs in this process.
func (r *records) attempt(msg *message.Message) int {
	n := 1
	if d, ok := transport.DeliveryOf(msg.Context()); ok {
		n = d.Attempt()
	}
	if r.tierOf(msg) > 0 {
		v, _ := transport.LastHeader(consumedOf(msg), filters.HeaderAttempt)
		base, _ := strconv.Atoi(string(v))
		n += max(base, 0)
	}
	return n
}

// failed is msg's record as it goes to a retry tier or the quarantine
// (topic; to partition pin, or by key with -1): same key, payload and
// headers, in order, plus the failure's headers (those it had already are
// replaced), and the job id if it had none.
func (r *records) failed(msg *message.Message, topic string, err error, pin int32) *sarama.ProducerMessage {
	rec := consumedOf(msg)
	now := r.now().UTC()
	tier := r.tierOf(msg)
	origin, _ := transport.LastHeader(rec, filters.HeaderOrigin)
	if o, ok := transport.RecordFrom(msg.Context()); ok && (tier == 0 || len(origin) == 0) {
		origin = []byte(o.String())
	}
	first := now
	if d, ok := transport.DeliveryOf(msg.Context()); ok && !d.FirstFailure().IsZero() {
		first = d.FirstFailure()
	}
	firstText := first.UTC().Format(time.RFC3339Nano)
	if v, _ := transport.LastHeader(rec, filters.HeaderFirstFailure); tier > 0 && len(v) > 0 {
		firstText = string(v)
	}
	extra := []sarama.RecordHeader{
		header(filters.HeaderError, err.Error()),
		header(filters.HeaderStage, r.stage),
		header(filters.HeaderAttempt, strconv.Itoa(r.attempt(msg))),
		{Key: []byte(filters.HeaderOrigin), Value: origin},
		header(filters.HeaderFirstFailure, firstText),
		header(filters.HeaderLastFailure, now.Format(time.RFC3339Nano)),
	}
	var pe *panicError
	if errors.As(err, &pe) {
		extra = append(extra, header(filters.HeaderStack, pe.stack))
	}
	if !original(msg).Headers.Has(filters.HeaderJob) {
		extra = append(extra, header(filters.HeaderJob, jobID(msg.Context())))
	}
	return copyOf(msg, topic, failureRewrites, extra, pin)
}

// failureRewrites are the headers failed sets anew (a record that failed
// before has them).
var failureRewrites = map[string]bool{
	filters.HeaderError: true, filters.HeaderStage: true, filters.HeaderAttempt: true,
	filters.HeaderOrigin: true, filters.HeaderFirstFailure: true, filters.HeaderLastFailure: true,
	filters.HeaderStack: true, filters.HeaderRetryAt: true,
}

// partitionOf is the partition msg was read from.
func partitionOf(msg *message.Message) int32 {
	o, _ := transport.RecordFrom(msg.Context())
	return o.Partition
}

// recordString is "topic/partition/offset" of msg's record.
func recordString(msg *message.Message) string {
	o, _ := transport.RecordFrom(msg.Context())
	return o.String()
}
