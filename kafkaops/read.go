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

// NoEnd as the end of [ReadRange] reads on for ever: records that arrive
// later too, until fn says to stop or ctx ends.
const NoEnd int64 = -1

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
// up to (not including) end, or without an end for [NoEnd], until fn says
// to stop (more false, or an error, which it returns). It returns more
// true when it read the whole range. Offsets without a record (compacted
// away, transaction markers) are skipped: with no record for a while and
// the partition's high-water mark at end or past it, the range is done.
// When ctx ends it returns ctx's error.
func ReadRange(ctx context.Context, consumer sarama.Consumer, topic string, partition int32, from, end int64,
	fn func(*sarama.ConsumerMessage) (more bool, err error)) (bool, error) {
	if end != NoEnd && from >= end {
		return true, nil
	}
	pc, err := consumer.ConsumePartition(topic, partition, from)
	if err != nil {
		return false, fmt.Errorf("read %s/%d from %d: %w", topic, partition, from, err)
	}
	defer pc.AsyncClose()
	var idle *time.Timer
	var idleC <-chan time.Time // nil (never ready) without an end
	if end != NoEnd {
		idle = time.NewTimer(scanIdle)
		defer idle.Stop()
		idleC = idle.C
	}
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case err := <-pc.Errors():
			return false, fmt.Errorf("read %s/%d: %w", topic, partition, err)
		case m := <-pc.Messages():
			if end != NoEnd && m.Offset >= end {
				return true, nil
			}
			if more, err := fn(m); err != nil || !more {
				return false, err
			}
			if end != NoEnd {
				if m.Offset+1 >= end {
					return true, nil
				}
				idle.Reset(scanIdle)
			}
		case <-idleC:
			if pc.HighWaterMarkOffset() >= end {
				return true, nil // the rest are gaps
			}
			return false, errors.New("read " + topic + ": no record and no progress for " + scanIdle.String())
		}
	}
}
