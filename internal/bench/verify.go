package main

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/IBM/sarama"
)

// tally counts the records of an output topic.
type tally struct {
	// total is every record read; distinct the records with ids 0…n-1
	// counted once; duplicates the extra copies of those; foreign the
	// records whose payload has no id in range.
	total, distinct, duplicates, foreign int
}

// countOutput reads topic from its start to its current log end, outside
// any consumer group, and counts the records of a backlog of n.
func (e *env) countOutput(ctx context.Context, topic string, n int) (tally, error) {
	parts, total, err := readTopic(ctx, e, topic, func(m *sarama.ConsumerMessage) (int64, bool) {
		id, _, ok := parsePayload(m.Value)
		return id, ok
	})
	if err != nil {
		return tally{}, err
	}
	seen := make([]bool, n)
	t := tally{total: total}
	for _, ids := range parts {
		for _, id := range ids {
			if id < 0 || id >= int64(n) {
				t.foreign++
				continue
			}
			if seen[id] {
				t.duplicates++
			} else {
				seen[id] = true
				t.distinct++
			}
		}
	}
	t.foreign += total - t.distinct - t.duplicates - t.foreign
	return t, nil
}

// readTopic reads topic from its start to its current log end, outside
// any consumer group, one goroutine per partition, and returns what pick
// took from each record (in offset order, by partition; records pick
// refuses are left out) and how many records it read.
func readTopic[T any](ctx context.Context, e *env, topic string, pick func(*sarama.ConsumerMessage) (T, bool)) (map[int32][]T, int, error) {
	ends, err := e.logEnds(topic)
	if err != nil {
		return nil, 0, err
	}
	c, err := sarama.NewConsumer(e.brokers, e.config("millrace-bench-counter"))
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: open consumer: %w", topic, err)
	}
	defer c.Close()
	readCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		parts = map[int32][]T{}
		total int
		errs  []error
		wg    sync.WaitGroup
	)
	for p, end := range ends {
		if end == 0 {
			continue
		}
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			cancel()
			wg.Wait()
			return nil, 0, fmt.Errorf("read %s/%d: %w", topic, p, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var got []T
			n, err := readPartition(readCtx, pc, end, func(m *sarama.ConsumerMessage) {
				if v, ok := pick(m); ok {
					got = append(got, v)
				}
			})
			_ = pc.Close() // its errors were read by readPartition
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("read %s/%d: %w", topic, p, err))
				cancel()
			}
			total += n
			parts[p] = got
		}()
	}
	wg.Wait()
	return parts, total, errors.Join(errs...)
}

// readPartition reads pc up to the record before offset end, handing each
// record to visit, and returns how many records it read.
func readPartition(ctx context.Context, pc sarama.PartitionConsumer, end int64, visit func(*sarama.ConsumerMessage)) (total int, err error) {
	for {
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case m, ok := <-pc.Messages():
			if !ok {
				return total, errors.New("partition consumer closed early")
			}
			if m.Offset >= end {
				return total, nil
			}
			total++
			visit(m)
			if m.Offset == end-1 {
				return total, nil
			}
		case cerr := <-pc.Errors():
			if cerr != nil {
				return total, cerr.Err
			}
		}
	}
}
