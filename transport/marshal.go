package transport

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/IBM/sarama"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// keyMetadata is the Watermill metadata entry that carries the record key
// between the transport and the stage handler. It never becomes a header.
const keyMetadata = "_millrace_key"

// partitionMetadata pins a message to a partition (see SetMessagePartition).
// It never becomes a header.
const partitionMetadata = "_millrace_partition"

// Marshaler converts Watermill messages to Kafka records and back. The
// format is watermill-kafka's (the message UUID in the _watermill_message_uuid
// header, metadata as headers), so stock Watermill consumers read millrace
// topics, plus the record key.
type Marshaler struct{}

var _ wkafka.MarshalerUnmarshaler = Marshaler{}

// Marshal implements watermill-kafka's Marshaler.
func (Marshaler) Marshal(topic string, msg *message.Message) (*sarama.ProducerMessage, error) {
	headers := make([]sarama.RecordHeader, 0, len(msg.Metadata)+1)
	headers = append(headers, sarama.RecordHeader{Key: uuidHeaderKey, Value: ReadOnlyBytes(msg.UUID)})
	var key sarama.Encoder
	pin := int32(-1)
	for k, v := range msg.Metadata {
		switch k {
		case keyMetadata:
			key = sarama.ByteEncoder(ReadOnlyBytes(v))
		case partitionMetadata:
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("metadata %s: bad partition %q", k, v)
			}
			pin = int32(n)
		case wkafka.UUIDHeaderKey:
			return nil, fmt.Errorf("metadata %s is reserved for the message UUID", k)
		default:
			headers = append(headers, sarama.RecordHeader{Key: ReadOnlyBytes(k), Value: ReadOnlyBytes(v)})
		}
	}
	if pin >= 0 {
		key = pinned{key: key, partition: pin}
	}
	return &sarama.ProducerMessage{Topic: topic, Key: key, Value: sarama.ByteEncoder(msg.Payload), Headers: headers}, nil
}

// Pin returns a record key that carries the partition the record must go
// to, whatever the key's hash: the murmur2 partitioner of NewProducerConfig
// honours it. key may be nil (the record has no key).
func Pin(key sarama.Encoder, partition int32) sarama.Encoder {
	return pinned{key: key, partition: partition}
}

// pinned is a record key that carries the partition the record must go to;
// the murmur2 partitioner honours it.
type pinned struct {
	key       sarama.Encoder
	partition int32
}

func (p pinned) Encode() ([]byte, error) {
	if p.key == nil {
		return nil, nil
	}
	return p.key.Encode()
}

func (p pinned) Length() int {
	if p.key == nil {
		return 0
	}
	return p.key.Length()
}

// Unmarshal implements watermill-kafka's Unmarshaler. Metadata is a map:
// of a header name that repeats, the last value is kept (as Kafka's
// Headers.lastHeader reads it). Headers named like the metadata entries
// that carry the key and a pinned partition are not decoded, so that a
// header on an incoming record cannot set the key or partition of the
// message it becomes when it is published again.
func (m Marshaler) Unmarshal(r *sarama.ConsumerMessage) (*message.Message, error) {
	return m.decode(r), nil
}

func (Marshaler) decode(r *sarama.ConsumerMessage) *message.Message {
	msg := message.NewMessage("", r.Value)
	md := msg.Metadata // NewMessage made it; a map of our own would be a second one
	for _, h := range r.Headers {
		switch name := string(h.Key); name {
		case wkafka.UUIDHeaderKey:
			msg.UUID = string(h.Value)
		case keyMetadata, partitionMetadata:
		default:
			md[HeaderName(h.Key)] = string(h.Value)
		}
	}
	if r.Key != nil {
		md[keyMetadata] = string(r.Key)
	}
	return msg
}

// LastHeader returns the value of the last header of rec named name, as
// Kafka's Headers.lastHeader does, and whether there is one.
func LastHeader(rec *sarama.ConsumerMessage, name string) ([]byte, bool) {
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

// MessageIDHeader is the header holding a message's Watermill UUID
// (watermill-kafka's format).
const MessageIDHeader = wkafka.UUIDHeaderKey

// uuidHeaderKey is wkafka.UUIDHeaderKey as header bytes (read only).
var uuidHeaderKey = []byte(wkafka.UUIDHeaderKey)

// ReadOnlyBytes returns the bytes of s without copying them. sarama only
// reads the keys, values and headers of a record it encodes, so records
// may share the strings of a message's metadata: a copy per header was 3%
// of a stage's CPU.
// An empty string gives an empty, non-nil slice: nil would encode as a
// null key or header value.
func ReadOnlyBytes(s string) []byte {
	if s == "" {
		return []byte{}
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// knownHeaders are header names that decoding a record shares rather than
// allocating a string for each (see InternHeaderNames); copied on write.
var knownHeaders atomic.Pointer[map[string]string]

func init() { knownHeaders.Store(&map[string]string{}) }

// InternHeaderNames makes HeaderName share one string for each of names:
// the header names a program writes on most records (the router's, for
// example), so that reading them allocates nothing per record.
func InternHeaderNames(names ...string) {
	for {
		old := knownHeaders.Load()
		m := make(map[string]string, len(*old)+len(names))
		for k, v := range *old {
			m[k] = v
		}
		for _, n := range names {
			m[n] = n
		}
		if knownHeaders.CompareAndSwap(old, &m) {
			return
		}
	}
}

// HeaderName returns a header's name as a string, shared for the names
// given to InternHeaderNames.
func HeaderName(b []byte) string {
	if s, ok := (*knownHeaders.Load())[string(b)]; ok { // no allocation to look up
		return s
	}
	return string(b)
}

// Record says where a message came from.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time
}

func (r Record) String() string {
	b := make([]byte, 0, len(r.Topic)+16)
	b = append(b, r.Topic...)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(r.Partition), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, r.Offset, 10)
	return string(b)
}

type recordKey struct{}

// RecordFrom returns the origin of the message whose context ctx is.
func RecordFrom(ctx context.Context) (Record, bool) {
	r, ok := ctx.Value(recordKey{}).(*Record)
	if !ok {
		return Record{}, false
	}
	return *r, true
}

// SetMessagePartition makes the Publisher send msg to partition n of its
// topic, whatever its key (a Publisher built with NewProducerConfig).
func SetMessagePartition(msg *message.Message, n int32) {
	msg.Metadata[partitionMetadata] = strconv.Itoa(int(n))
}

// MessageKey returns a message's record key and whether it has one.
func MessageKey(msg *message.Message) ([]byte, bool) {
	k, ok := msg.Metadata[keyMetadata]
	if !ok {
		return nil, false
	}
	return []byte(k), true
}

// SetMessageKey sets (or, with nil, removes) a message's record key.
func SetMessageKey(msg *message.Message, key []byte) {
	if key == nil {
		delete(msg.Metadata, keyMetadata)
		return
	}
	msg.Metadata[keyMetadata] = string(key)
}

// PinnedPartition is the partition a key made by [Pin] carries; -1 for
// any other key.
func PinnedPartition(key sarama.Encoder) int32 {
	if p, ok := key.(pinned); ok {
		return p.partition
	}
	return -1
}
