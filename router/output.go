package router

import (
	"context"
	"crypto/sha1"
	"strconv"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/transport"
)

// output is the record a filter's output o becomes: its key, payload and
// headers (in order, repeats kept), less the failure headers, plus the job,
// the stage, the attempt, the dedup mark and the lineage (if any), in watermill-kafka's
// format (a fresh message UUID header). It is built straight from o, without a Watermill
// message in between: outputs are the hot path.
func (s *stage) output(o *filters.Message, job, attempt, mark, lineage string) *sarama.ProducerMessage {
	r := &outRecord{value: o.Payload}
	hs := r.headers[:0]
	n := len(o.Headers) + 4 // + message id, job, stage, attempt
	if mark != "" {
		n++
	}
	if s.results != nil {
		n++
	}
	if n > len(r.headers) {
		hs = make([]sarama.RecordHeader, 0, n)
	}
	// Headers are appended one by one and the message filled in field by
	// field: composite temporaries grow this frame, and with it the
	// handler goroutine's stack (see quarantine).
	transport.PutMessageID(&r.id)
	hs = append(hs, sarama.RecordHeader{Key: messageIDHeader, Value: r.id[:]})
	for _, h := range o.Headers {
		if _, drop := notCopiedToOutputs[h.Key]; !drop {
			hs = append(hs, sarama.RecordHeader{Key: transport.ReadOnlyBytes(h.Key), Value: h.Value})
		}
	}
	hs = append(hs, sarama.RecordHeader{Key: headerJob, Value: transport.ReadOnlyBytes(job)})
	hs = append(hs, sarama.RecordHeader{Key: headerStage, Value: transport.ReadOnlyBytes(s.plan.Name)})
	hs = append(hs, sarama.RecordHeader{Key: headerAttempt, Value: transport.ReadOnlyBytes(attempt)})
	if mark != "" {
		hs = append(hs, sarama.RecordHeader{Key: headerDedup, Value: transport.ReadOnlyBytes(mark)})
	}
	if s.results != nil {
		hs = append(hs, sarama.RecordHeader{Key: headerLineage, Value: transport.ReadOnlyBytes(lineage)})
	}
	r.msg.Topic = s.plan.Output
	r.msg.Value = &r.value
	r.msg.Headers = hs
	if o.Key != nil {
		r.key = o.Key
		r.msg.Key = &r.key
	}
	return &r.msg
}

// outRecord is an output record in one allocation: the producer message,
// its key and value encoders, its message id and room for a few headers (a
// separate allocation each cost the stage about 3% of its CPU).
type outRecord struct {
	msg        sarama.ProducerMessage
	key, value bytesEncoder
	id         [36]byte
	headers    [10]sarama.RecordHeader
}

// bytesEncoder is sarama.ByteEncoder behind a pointer, so that it can live
// inside an outRecord (an interface holding a slice allocates).
type bytesEncoder []byte

func (b *bytesEncoder) Encode() ([]byte, error) { return *b, nil }
func (b *bytesEncoder) Length() int             { return len(*b) }

var (
	headerJob     = []byte(filters.HeaderJob)
	headerStage   = []byte(filters.HeaderStage)
	headerAttempt = []byte(filters.HeaderAttempt)
	headerDedup   = []byte(filters.HeaderDedup)
	headerLineage = []byte(filters.HeaderLineage)
)

// notCopiedToOutputs are the headers of a filter's output that its record
// does not get: the failure headers, the ones the stage sets, and
// Watermill's message id (each record gets its own).
var notCopiedToOutputs = map[string]struct{}{}

func init() {
	for _, h := range append(filters.FailureHeaders(), filters.HeaderJob, filters.HeaderStage,
		filters.HeaderAttempt, filters.HeaderLineage, transport.MessageIDHeader) {
		notCopiedToOutputs[h] = struct{}{}
	}
	// The headers millrace writes on most records: reading them allocates
	// no string per record.
	transport.InternHeaderNames(append(filters.FailureHeaders(), filters.HeaderJob, filters.HeaderStage,
		filters.HeaderAttempt, filters.HeaderReplays, filters.HeaderDedup, filters.HeaderLineage)...)
}

// jobID names a job that arrived without a millrace-job header after the
// record it came in, so a redelivered record gets the same id: the
// name-based (SHA-1, version 5) UUID of "kafka:topic/partition/offset" in
// the URL namespace, computed without allocating but the string.
func jobID(ctx context.Context) string {
	r, ok := transport.RecordFrom(ctx)
	if !ok {
		return uuid.NewString()
	}
	var buf [112]byte // longer topic names spill to the heap
	b := append(buf[:0], uuid.NameSpaceURL[:]...)
	b = append(b, "kafka:"...)
	b = append(b, r.Topic...)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(r.Partition), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, r.Offset, 10)
	sum := sha1.Sum(b)
	var u uuid.UUID
	copy(u[:], sum[:])
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u.String()
}
