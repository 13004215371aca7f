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
	ends, err := e.logEnds(topic)
	if err != nil {
		return tally{}, err
	}
	c, err := sarama.NewConsumer(e.brokers, e.config("millrace-bench-counter"))
	if err != nil {
		return tally{}, fmt.Errorf("count %s: open consumer: %w", topic, err)
	}
	defer c.Close()
	readCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu   sync.Mutex
		seen = make([]bool, n)
		t    tally
		errs []error
		wg   sync.WaitGroup
	)
	for p, end := range ends {
		if end == 0 {
			continue
		}
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			return tally{}, fmt.Errorf("count %s/%d: %w", topic, p, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids, total, err := readPartition(readCtx, pc, end)
			_ = pc.Close() // its errors were read by readPartition
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("count %s/%d: %w", topic, p, err))
				cancel()
			}
			t.total += total
			t.foreign += total - len(ids)
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
		}()
	}
	wg.Wait()
	return t, errors.Join(errs...)
}

// readPartition reads pc up to the record before offset end and returns
// the ids of the records that have one, and how many records it read.
func readPartition(ctx context.Context, pc sarama.PartitionConsumer, end int64) (ids []int64, total int, err error) {
	for {
		select {
		case <-ctx.Done():
			return ids, total, ctx.Err()
		case m, ok := <-pc.Messages():
			if !ok {
				return ids, total, errors.New("partition consumer closed early")
			}
			if m.Offset >= end {
				return ids, total, nil
			}
			total++
			if id, _, ok := parsePayload(m.Value); ok {
				ids = append(ids, id)
			}
			if m.Offset == end-1 {
				return ids, total, nil
			}
		case cerr := <-pc.Errors():
			if cerr != nil {
				return ids, total, cerr.Err
			}
		}
	}
}
