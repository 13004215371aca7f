package kafkaops

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// scanIdle is how long ReadRange waits for a record that may never come
// (offsets of compacted topics or transaction markers leave gaps).
const scanIdle = 5 * time.Second

// ReadEach calls fn for each record of topic/partition from offset from up
// to (not including) end: ReadRange for a fn that reads everything.
func ReadEach(ctx context.Context, consumer sarama.Consumer, topic string, partition int32, from, end int64,
	fn func(*sarama.ConsumerMessage)) error {
	_, err := ReadRange(ctx, consumer, topic, partition, from, end, func(m *sarama.ConsumerMessage) (bool, error) {
		fn(m)
		return true, nil
	})
	return err
}

// ReadRange calls fn for each record of topic/partition from offset from
// up to (not including) end, until fn says to stop (more false, or an
// error, which it returns). Offsets without a record (compacted away,
// transaction markers) are skipped: with no record for a while and the
// partition's high-water mark at end or past it, the range is done.
func ReadRange(ctx context.Context, consumer sarama.Consumer, topic string, partition int32, from, end int64,
	fn func(*sarama.ConsumerMessage) (more bool, err error)) (bool, error) {
	if from >= end {
		return true, nil
	}
	pc, err := consumer.ConsumePartition(topic, partition, from)
	if err != nil {
		return false, fmt.Errorf("read %s/%d from %d: %w", topic, partition, from, err)
	}
	defer pc.AsyncClose()
	idle := time.NewTimer(scanIdle)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case err := <-pc.Errors():
			return false, fmt.Errorf("read %s/%d: %w", topic, partition, err)
		case m := <-pc.Messages():
			if m.Offset >= end {
				return true, nil
			}
			if more, err := fn(m); err != nil || !more {
				return false, err
			}
			if m.Offset+1 >= end {
				return true, nil
			}
			idle.Reset(scanIdle)
		case <-idle.C:
			if pc.HighWaterMarkOffset() >= end {
				return true, nil // the rest are gaps
			}
			return false, errors.New("read " + topic + ": no record and no progress for " + scanIdle.String())
		}
	}
}
