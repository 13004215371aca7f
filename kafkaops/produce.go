package kafkaops

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/pipeline"
)

// produceBatch is how many records [Produce] sends in one request.
const produceBatch = 500

// maxLine is the longest line [Produce] reads: 16 MiB.
const maxLine = 16 << 20

// ProduceOptions says what [Produce] sends where.
type ProduceOptions struct {
	Cluster
	// Topic receives the records. It is created with Topic.Partitions
	// (and Topic.Config) first if it does not exist, as `millrace run`
	// would create it.
	Topic pipeline.Topic
	// ReplicationFactor is that of the topic if it is created (-1: the
	// broker's default).
	ReplicationFactor int
	// Lines holds one record per line (ending in \n or \r\n, up to
	// 16 MiB); lines of only white space are skipped.
	Lines io.Reader
	// KeyOf computes a line's key (nil: no key); nil KeyOf gives every
	// record no key. A line whose key it fails on is not sent.
	KeyOf func(line []byte) ([]byte, error)
	// Headers are added to every record after its millrace-job header.
	Headers []Header
	// LineError, if set, is told of each line not sent (1-based line
	// number, KeyOf's error).
	LineError func(line int, err error)
	// Log gets a line when the topic is created (nil: none).
	Log *slog.Logger
	// Announce, if set, sends a record ahead of each record to another
	// topic (`millrace produce --wait`: the job's accepted event).
	Announce *Announce
}

// Announce is what [Produce] sends ahead of the records it produces: one
// record per record, keyed by its job id, to Topic. The announcements of
// a batch are sent, and acknowledged, before its records, so that a
// reader of Topic sees each job before anything can read its record. If
// the records then fail, their announcements stay.
type Announce struct {
	// Topic receives the announcements; it is created first if it does
	// not exist, as Produce creates its Topic.
	Topic pipeline.Topic
	// Value is the announcement of the record with job id job and the
	// given headers (ProduceOptions.Headers).
	Value func(job string, headers []Header) []byte
}

// ProduceResult counts what [Produce] did.
type ProduceResult struct {
	// Sent is how many records the broker acknowledged.
	Sent int
	// Failed is how many lines were not sent because KeyOf failed.
	Failed int
	// Jobs, with ProduceOptions.Announce, are the job ids of the records
	// sent, in the order they were sent.
	Jobs []string
	// FirstJob is the job id of the first record sent ("" if none was):
	// with one record, its job (`millrace jobs status ID`).
	FirstJob string
}

// Produce sends each line of opts.Lines as a record to opts.Topic, with a
// new millrace-job id (a random UUID) as its first header, in batches of
// 500 that each wait for the broker's acks (acks from all in-sync
// replicas), each after its announcements (see [Announce]). Its producer
// is idempotent, as the stages' are: a batch the client retries (the
// broker applied it but its answer timed out) is not written twice. It
// stops at the first batch the broker refuses; the result then counts
// what the broker took, of that batch too.
func Produce(ctx context.Context, opts ProduceOptions) (ProduceResult, error) {
	var res ProduceResult
	client, err := opts.Connect(ctx)
	if err != nil {
		return res, err
	}
	defer client.Close()
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	topics := []pipeline.Topic{opts.Topic}
	if opts.Announce != nil {
		topics = append(topics, opts.Announce.Topic)
	}
	if err := EnsureTopics(client, topics, opts.ReplicationFactor, log); err != nil {
		return res, err
	}
	producer, err := opts.syncProducer()
	if err != nil {
		return res, err
	}
	defer producer.Close()
	p := &producing{opts: opts, producer: producer, res: &res}
	return res, p.run()
}

type producing struct {
	opts     ProduceOptions
	producer sarama.SyncProducer
	res      *ProduceResult
}

func (p *producing) run() error {
	sc := bufio.NewScanner(p.opts.Lines)
	sc.Buffer(make([]byte, 64*1024), maxLine)
	batch := make([]*sarama.ProducerMessage, 0, produceBatch)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Bytes()
		if len(bytes.TrimSpace(text)) == 0 {
			continue
		}
		value := append([]byte{}, text...)
		var key []byte
		if p.opts.KeyOf != nil {
			k, err := p.opts.KeyOf(value)
			if err != nil {
				if p.opts.LineError != nil {
					p.opts.LineError(line, err)
				}
				p.res.Failed++
				continue
			}
			key = k
		}
		m := &sarama.ProducerMessage{Topic: p.opts.Topic.Name, Value: sarama.ByteEncoder(value),
			Headers: append([]sarama.RecordHeader{{Key: []byte(filters.HeaderJob), Value: []byte(uuid.NewString())}}, p.opts.Headers...)}
		if key != nil {
			m.Key = sarama.ByteEncoder(key)
		}
		if batch = append(batch, m); len(batch) == produceBatch {
			if err := p.flush(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read line %d: %w", line+1, err)
	}
	return p.flush(batch)
}

func (p *producing) flush(batch []*sarama.ProducerMessage) error {
	if len(batch) == 0 {
		return nil
	}
	ids, err := p.announce(batch)
	if err != nil {
		return err
	}
	err = p.producer.SendMessages(batch)
	sent := acked(batch, err)
	if p.res.FirstJob == "" && len(sent) > 0 {
		p.res.FirstJob = string(sent[0].Headers[0].Value) // the millrace-job header run put first
	}
	p.res.Sent += len(sent)
	if ids != nil {
		for _, m := range sent {
			p.res.Jobs = append(p.res.Jobs, string(m.Headers[0].Value))
		}
	}
	if err != nil {
		return fmt.Errorf("send to %s (%d sent): %w", p.opts.Topic.Name, p.res.Sent, err)
	}
	return nil
}

// announce sends the announcements of batch, if any, and returns the job
// ids of its records.
func (p *producing) announce(batch []*sarama.ProducerMessage) ([]string, error) {
	a := p.opts.Announce
	if a == nil {
		return nil, nil
	}
	ids := make([]string, len(batch))
	msgs := make([]*sarama.ProducerMessage, len(batch))
	for i, m := range batch {
		ids[i] = string(m.Headers[0].Value) // the millrace-job header run put first
		msgs[i] = &sarama.ProducerMessage{Topic: a.Topic.Name, Key: sarama.StringEncoder(ids[i]),
			Value: sarama.ByteEncoder(a.Value(ids[i], p.opts.Headers))}
	}
	if err := p.producer.SendMessages(msgs); err != nil {
		return nil, fmt.Errorf("announce to %s (after %d sent to %s): %w", a.Topic.Name, p.res.Sent, p.opts.Topic.Name, err)
	}
	return ids, nil
}
