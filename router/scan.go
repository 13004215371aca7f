package router

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// scanIdle is how long readRange waits for a record that may never come
// (offsets of compacted topics or transaction markers leave gaps).
const scanIdle = 5 * time.Second

// readRange calls fn for each record of topic/partition from offset from
// up to (not including) end, then returns.
func readRange(ctx context.Context, consumer sarama.Consumer, topic string, partition int32, from, end int64,
	fn func(*sarama.ConsumerMessage)) error {
	if from >= end {
		return nil
	}
	pc, err := consumer.ConsumePartition(topic, partition, from)
	if err != nil {
		return fmt.Errorf("read %s/%d from %d: %w", topic, partition, from, err)
	}
	defer pc.AsyncClose()
	idle := time.NewTimer(scanIdle)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-pc.Errors():
			return fmt.Errorf("read %s/%d: %w", topic, partition, err)
		case m := <-pc.Messages():
			if m.Offset >= end {
				return nil
			}
			fn(m)
			if m.Offset+1 >= end {
				return nil
			}
			idle.Reset(scanIdle)
		case <-idle.C:
			if pc.HighWaterMarkOffset() >= end {
				return nil // the rest are gaps
			}
			return errors.New("read " + topic + ": no record and no progress for " + scanIdle.String())
		}
	}
}
