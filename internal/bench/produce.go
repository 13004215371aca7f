package main

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/IBM/sarama"
)

// minPayloadSize fits the JSON fields of a record with the largest ids and
// timestamps.
const minPayloadSize = 80

// encodePayload returns the record with id as a JSON object of exactly size
// bytes: {"id":<id>,"n":0,"ts":<ts>,"pad":"xxx…"}. ts is the producer's
// clock in Unix nanoseconds; n is what the jq case increments. Every system
// measured keeps id and ts (jq re-sorts the keys but keeps the numbers'
// text), so the output can be counted and timed.
func encodePayload(id, ts int64, size int) []byte {
	b := make([]byte, 0, size)
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"n":0,"ts":`...)
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, `,"pad":"`...)
	for len(b) < size-2 {
		b = append(b, 'x')
	}
	return append(b, `"}`...)
}

// parsePayload reads id and ts back from a payload.
func parsePayload(p []byte) (id, ts int64, ok bool) {
	id, ok1 := intField(p, `"id":`)
	ts, ok2 := intField(p, `"ts":`)
	return id, ts, ok1 && ok2
}

// intField parses the integer that follows name in p.
func intField(p []byte, name string) (int64, bool) {
	i := bytes.Index(p, []byte(name))
	if i < 0 {
		return 0, false
	}
	p = p[i+len(name):]
	end := 0
	for end < len(p) && (p[end] >= '0' && p[end] <= '9' || end == 0 && p[end] == '-') {
		end++
	}
	v, err := strconv.ParseInt(string(p[:end]), 10, 64)
	return v, err == nil
}

// record is the producer message of the record with id, stamped now.
func (e *env) record(topic string, id int64) *sarama.ProducerMessage {
	return e.recordKeyed(topic, id, e.opts.keys)
}

// recordKeyed is record with the key of id among keys keys ("k<id mod
// keys>"; none if keys is 0).
func (e *env) recordKeyed(topic string, id int64, keys int) *sarama.ProducerMessage {
	m := &sarama.ProducerMessage{
		Topic: topic,
		Value: sarama.ByteEncoder(encodePayload(id, time.Now().UnixNano(), e.opts.size)),
	}
	if keys > 0 {
		m.Key = sarama.StringEncoder("k" + strconv.FormatInt(id%int64(keys), 10))
	}
	return m
}

// javaBatchBytes and javaLinger are a Java producer's defaults
// (batch.size 16 KiB per partition, linger.ms 5 since Kafka 4.0): what
// snappyBatches sets, so that compressed batches hold as many records as a
// Java producer's would.
const (
	javaBatchBytes = 16 << 10
	javaLinger     = 5 * time.Millisecond
)

// snappyBatches has the backlog producer compress its batches with snappy
// and fill them as a Java producer does: sarama's Flush.Bytes counts a
// request to a broker (every partition of it), so it is batch.size per
// partition; Flush.Frequency is linger.ms.
func (e *env) snappyBatches(c *sarama.Config) {
	c.Producer.Compression = sarama.CompressionSnappy
	c.Producer.Flush.Bytes = javaBatchBytes * e.opts.partitions
	c.Producer.Flush.Frequency = javaLinger
}

// produce writes the records first…first+n-1 to topic as fast as a sarama
// AsyncProducer can and returns once the broker acknowledged every one.
func (e *env) produce(ctx context.Context, topic string, first, n int64) error {
	return e.produceWith(ctx, topic, first, n, e.opts.keys, nil)
}

// produceWith is produce with the records keyed over keys keys and a
// producer config that tune (if not nil) changes.
func (e *env) produceWith(ctx context.Context, topic string, first, n int64, keys int, tune func(*sarama.Config)) error {
	cfg := e.config("millrace-bench-producer")
	if tune != nil {
		tune(cfg)
	}
	p, err := sarama.NewAsyncProducer(e.brokers, cfg)
	if err != nil {
		return fmt.Errorf("open producer: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		for id := first; id < first+n; id++ {
			select {
			case p.Input() <- e.recordKeyed(topic, id, keys):
			case <-ctx.Done():
				return
			}
		}
	}()
	var acked, failed int64
	var firstErr error
	for acked+failed < n && ctx.Err() == nil {
		select {
		case <-p.Successes():
			acked++
		case pe := <-p.Errors():
			failed++
			if firstErr == nil {
				firstErr = pe.Err
			}
		case <-ctx.Done():
		}
	}
	stopped := ctx.Err()
	cancel()
	<-fed
	closeErr := p.Close()
	switch {
	case failed > 0:
		return fmt.Errorf("produce to %s: %d of %d records failed, first: %w", topic, failed, n, firstErr)
	case acked < n:
		return fmt.Errorf("produce to %s: stopped after %d of %d records: %w", topic, acked, n, stopped)
	case closeErr != nil:
		return fmt.Errorf("close producer: %w", closeErr)
	}
	return nil
}

// produceBacklog fills a fresh input topic with n records (ids 0…n-1) and
// checks that it holds exactly n.
func (e *env) produceBacklog(ctx context.Context, topic string, n int) error {
	return e.produceBacklogWith(ctx, topic, n, e.opts.keys, nil)
}

// produceBacklogWith is produceBacklog with the records keyed over keys
// keys and a producer config that tune (if not nil) changes.
func (e *env) produceBacklogWith(ctx context.Context, topic string, n, keys int, tune func(*sarama.Config)) error {
	began := time.Now()
	if err := e.produceWith(ctx, topic, 0, int64(n), keys, tune); err != nil {
		return err
	}
	got, err := e.logEnd(topic)
	if err != nil {
		return err
	}
	if got != int64(n) {
		return fmt.Errorf("backlog: %s holds %d records, want %d", topic, got, n)
	}
	d := time.Since(began)
	e.logf("  produced a backlog of %d records in %s (%s records/s)", n, fmtDur(d), fmtRate(float64(n)/d.Seconds()))
	return nil
}
