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
// to stop (more false, or an error, which it returns): ReadRangeWith with
// the default options.
func ReadRange(ctx context.Context, consumer sarama.Consumer, topic string, partition int32, from, end int64,
	fn func(*sarama.ConsumerMessage) (more bool, err error)) (bool, error) {
	return ReadRangeWith(ctx, consumer, topic, partition, from, end, ReadOptions{}, fn)
}

// ReadOptions tune ReadRangeWith; the zero value is the default.
type ReadOptions struct {
	// Idle is how long the reader waits for the next record (default
	// 5 s): then, if the partition's high-water mark is at or past end,
	// the rest of the range is gaps (offsets of compacted records or
	// transaction markers) and the read is done.
	Idle time.Duration
	// Patient makes the reader keep waiting, instead of failing, when no
	// record came for Idle and no fetch showed the high-water mark at end
	// yet, and take the partition consumer's errors (sarama retries the
	// fetch) as passing, but an offset out of range: ctx then bounds the
	// read. A restore that must outlive a broker restart wants it; a
	// command a user waits on does not.
	Patient bool
}

// errReaderGone is the partition consumer closing its messages under the
// reader (sarama does when the offset falls out of range).
var errReaderGone = fmt.Errorf("the partition consumer stopped: %w", sarama.ErrOffsetOutOfRange)

// ReadRangeWith calls fn for each record of topic/partition from offset
// from up to (not including) end, or without an end for NoEnd, until fn
// says to stop (more false, or an error, which it returns). done reports
// whether it read the whole range. Offsets without a record are skipped
// (see ReadOptions.Idle). An offset that fell out of range (retention
// deleted the records being read) ends the read with an error wrapping
// sarama.ErrOffsetOutOfRange. When ctx ends it returns ctx's error.
func ReadRangeWith(ctx context.Context, consumer sarama.Consumer, topic string, partition int32, from, end int64,
	opts ReadOptions, fn func(*sarama.ConsumerMessage) (more bool, err error)) (done bool, err error) {
	if end != NoEnd && from >= end {
		return true, nil
	}
	if opts.Idle <= 0 {
		opts.Idle = scanIdle
	}
	pc, err := consumer.ConsumePartition(topic, partition, from)
	if err != nil {
		return false, fmt.Errorf("read %s/%d from %d: %w", topic, partition, from, err)
	}
	defer pc.AsyncClose()
	var idle *time.Timer
	var idleC <-chan time.Time // nil (never ready) without an end
	if end != NoEnd {
		idle = time.NewTimer(opts.Idle)
		defer idle.Stop()
		idleC = idle.C
	}
	var last error
	for {
		select {
		case <-ctx.Done():
			if last != nil {
				return false, fmt.Errorf("read %s/%d: %w (last error: %v)", topic, partition, ctx.Err(), last)
			}
			return false, ctx.Err()
		case err := <-pc.Errors():
			if !opts.Patient || errors.Is(err, sarama.ErrOffsetOutOfRange) {
				return false, fmt.Errorf("read %s/%d: %w", topic, partition, err)
			}
			last = err
		case m, ok := <-pc.Messages():
			if !ok {
				return false, fmt.Errorf("read %s/%d: %w", topic, partition, errReaderGone)
			}
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
				idle.Reset(opts.Idle)
			}
		case <-idleC:
			switch {
			case pc.HighWaterMarkOffset() >= end:
				return true, nil // the rest are gaps
			case opts.Patient:
				idle.Reset(opts.Idle) // no fetch came back yet
			default:
				return false, fmt.Errorf("read %s/%d: no record and no progress for %s", topic, partition, opts.Idle)
			}
		}
	}
}
