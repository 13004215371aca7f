package main

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/IBM/sarama"
)

// runRaw is the ceiling: a sarama consumer group reads in and hands each
// record to a sarama AsyncProducer writing it (same key, value and headers)
// to out; a record's offset is marked only when the broker acknowledged its
// copy, so it is at least once like millrace. The client config is
// millrace's own (transport.NewSaramaConfig: acks=all, murmur2 partitioner,
// auto-commit of marked offsets every second, sarama's default batching),
// whose requests transport.KafkaRequests counts, as it counts millrace's.
// With the same partitioner and partition count a record lands in the
// output partition numbered like its input partition, so acks, and so
// marks, come in offset order per partition.
func runRaw(ctx context.Context, e *env, prefix, in, out string) error {
	cfg := e.countedConfig(prefix + "-raw")
	producer, err := sarama.NewAsyncProducer(e.brokers, cfg)
	if err != nil {
		return fmt.Errorf("raw: open producer: %w", err)
	}
	group, err := sarama.NewConsumerGroup(e.brokers, prefix+".group", cfg)
	if err != nil {
		producer.Close()
		return fmt.Errorf("raw: join consumer group: %w", err)
	}
	var acks, groupErrs sync.WaitGroup
	var produceErr error
	acks.Add(2)
	go func() {
		defer acks.Done()
		for s := range producer.Successes() {
			r := s.Metadata.(rawOrigin)
			r.sess.MarkMessage(r.msg, "")
		}
	}()
	go func() {
		defer acks.Done()
		for pe := range producer.Errors() {
			if produceErr == nil {
				produceErr = pe.Err
			}
		}
	}()
	groupErrs.Add(1)
	go func() {
		defer groupErrs.Done()
		for err := range group.Errors() {
			e.log.Warn("raw: consumer group error", "err", err)
		}
	}()

	h := rawHandler{producer: producer, out: out}
	var consumeErr error
	for ctx.Err() == nil {
		if err := group.Consume(ctx, []string{in}, h); err != nil && ctx.Err() == nil {
			consumeErr = fmt.Errorf("raw: consume: %w", err)
			break
		}
	}
	// Flush what is in flight (its acks still mark offsets), then leave
	// the group, which commits.
	producer.AsyncClose()
	acks.Wait()
	closeErr := group.Close()
	groupErrs.Wait()
	if produceErr != nil {
		produceErr = fmt.Errorf("raw: produce: %w", produceErr)
	}
	if closeErr != nil {
		closeErr = fmt.Errorf("raw: leave consumer group: %w", closeErr)
	}
	return errors.Join(consumeErr, produceErr, closeErr)
}

// rawOrigin travels with a produced record to mark its input when acked.
type rawOrigin struct {
	sess sarama.ConsumerGroupSession
	msg  *sarama.ConsumerMessage
}

// rawHandler copies each claimed record into the producer.
type rawHandler struct {
	producer sarama.AsyncProducer
	out      string
}

func (rawHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (rawHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h rawHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			pm := &sarama.ProducerMessage{
				Topic: h.out, Value: sarama.ByteEncoder(msg.Value),
				Metadata: rawOrigin{sess: sess, msg: msg},
			}
			if msg.Key != nil {
				pm.Key = sarama.ByteEncoder(msg.Key)
			}
			if len(msg.Headers) > 0 {
				pm.Headers = make([]sarama.RecordHeader, len(msg.Headers))
				for i, rh := range msg.Headers {
					pm.Headers[i] = *rh
				}
			}
			select {
			case h.producer.Input() <- pm:
			case <-sess.Context().Done():
				return nil
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}
