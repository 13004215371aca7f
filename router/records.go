package router

import (
	"strconv"

	"github.com/IBM/sarama"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/filters"
)

// A stage works on the Kafka record a message was handed out from, not on
// the Watermill message's metadata: a record's headers are an ordered list
// that may repeat names (KIP-82), and a map cannot carry them. Routing
// state (the key, a pinned partition) is set on the records the stage
// writes, never read from headers, so an incoming header cannot steer a
// record.

// consumedOf returns the record msg was handed out from, or nil when msg
// does not come from a window with SettleFromContext.
func consumedOf(msg *message.Message) *sarama.ConsumerMessage {
	if c, ok := handOutFrom(msg.Context()); ok && c.e != nil {
		return c.e.rec
	}
	return nil
}

// lastHeader returns the value of the last header of rec named name, as
// Kafka's Headers.lastHeader does, and whether there is one.
func lastHeader(rec *sarama.ConsumerMessage, name string) ([]byte, bool) {
	if rec == nil {
		return nil, false
	}
	for i := len(rec.Headers) - 1; i >= 0; i-- {
		if h := rec.Headers[i]; h != nil && string(h.Key) == name {
			return h.Value, true
		}
	}
	return nil, false
}

// keyOf returns the key of msg's record and whether it has one (an
// empty key is a key).
func keyOf(msg *message.Message) ([]byte, bool) {
	if rec := consumedOf(msg); rec != nil {
		return rec.Key, rec.Key != nil
	}
	return MessageKey(msg)
}

// input is the filter's view of msg's record (see original), built once
// per hand-out: the filter may change it.
func input(msg *message.Message) *filters.Message {
	c, ok := handOutFrom(msg.Context())
	if ok && c.in != nil {
		return c.in
	}
	m := original(msg)
	if ok {
		c.in = m
	}
	return m
}

// original is msg's record as it was read: its key, payload and headers as
// they are on the record (in order, repeats kept, values shared with it),
// less Watermill's message id header, which each record millrace writes
// gets anew. It is made afresh on each call.
func original(msg *message.Message) *filters.Message {
	rec := consumedOf(msg)
	if rec == nil { // a message that is not a hand-out of a window: its metadata
		key, _ := MessageKey(msg)
		m := &filters.Message{Key: key, Payload: msg.Payload}
		for k, v := range msg.Metadata {
			if k != keyMetadata && k != partitionMetadata {
				m.Headers = append(m.Headers, filters.Header{Key: k, Value: []byte(v)})
			}
		}
		return m
	}
	m := &filters.Message{Key: rec.Key, Payload: rec.Value}
	if len(rec.Headers) > 0 {
		m.Headers = make(filters.Headers, 0, len(rec.Headers)+1)
		for _, h := range rec.Headers {
			if h != nil && string(h.Key) != wkafka.UUIDHeaderKey {
				m.Headers = append(m.Headers, filters.Header{Key: headerName(h.Key), Value: h.Value})
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
	key, value := in.Key, in.Payload
	hs := make([]sarama.RecordHeader, 0, 1+len(in.Headers)+len(extra))
	hs = append(hs, sarama.RecordHeader{Key: uuidHeaderKey, Value: []byte(newMessageID())})
	for _, h := range in.Headers {
		if !drop[h.Key] {
			hs = append(hs, sarama.RecordHeader{Key: readOnlyBytes(h.Key), Value: h.Value})
		}
	}
	hs = append(hs, extra...)
	r := &sarama.ProducerMessage{Topic: topic, Headers: hs}
	if key != nil {
		r.Key = sarama.ByteEncoder(key)
	}
	if value != nil {
		r.Value = sarama.ByteEncoder(value)
	}
	if pin >= 0 {
		r.Key = pinned{key: r.Key, partition: pin}
	}
	return r
}

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
