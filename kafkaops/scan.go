package kafkaops

import (
	"context"
	"fmt"
	"strings"

	"github.com/IBM/sarama"
)

// topicError is err about topic, the topic named once: sarama's client
// names it in some of its errors ("t: kafka server: …").
func topicError(topic string, err error) error {
	if strings.HasPrefix(err.Error(), topic+": ") {
		return fmt.Errorf("topic %w", err)
	}
	return fmt.Errorf("topic %s: %w", topic, err)
}

// logBounds returns the log start offset of topic/partition and its end
// (the offset the next record will get), read with [GetOffset].
func logBounds(ctx context.Context, client sarama.Client, topic string, p int32) (start, end int64, err error) {
	if end, err = GetOffset(ctx, client, topic, p, sarama.OffsetNewest); err != nil {
		return 0, 0, fmt.Errorf("topic %s partition %d: %w", topic, p, err)
	}
	if start, err = GetOffset(ctx, client, topic, p, sarama.OffsetOldest); err != nil {
		return 0, 0, fmt.Errorf("topic %s partition %d: %w", topic, p, err)
	}
	return start, end, nil
}

// scan calls fn on every record of topic from start (partition → first
// offset; absent or before the log start: the log start) up to the end
// each partition had when scan began, one partition after the other in
// partition order, each in offset order. fn returning false stops the
// scan. The ends are read first, all of them: records written while it
// runs — a replayed record quarantined again, to a partition not read
// yet — are not scanned.
func scan(ctx context.Context, client sarama.Client, topic string, start map[int32]int64,
	fn func(*Record) (bool, error)) error {
	if err := client.RefreshMetadata(topic); err != nil {
		return topicError(topic, err)
	}
	parts, err := client.Partitions(topic)
	if err != nil {
		return topicError(topic, err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fmt.Errorf("open consumer: %w", err)
	}
	defer consumer.Close()
	firsts, ends := make([]int64, len(parts)), make([]int64, len(parts))
	for i, p := range parts {
		if firsts[i], ends[i], err = logBounds(ctx, client, topic, p); err != nil {
			return err
		}
	}
	for i, p := range parts {
		first, end := firsts[i], ends[i]
		if o, ok := start[p]; ok && o > first {
			first = o
		}
		more, err := ReadRange(ctx, consumer, topic, p, first, end, fn)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// backlog counts the offsets of topic from start (per partition; the log
// start where absent) to the end: the Total of a [Progress]. It is 0 when
// an offset cannot be read (the operation then reports it).
func backlog(ctx context.Context, client sarama.Client, topic string, start map[int32]int64) int64 {
	parts, err := client.Partitions(topic)
	if err != nil {
		return 0
	}
	var n int64
	for _, p := range parts {
		first, end, err := logBounds(ctx, client, topic, p)
		if err != nil {
			return 0
		}
		if o, ok := start[p]; ok && o > first {
			first = o
		}
		n += max(end-first, 0)
	}
	return n
}

// progressTo returns a function that counts a record read (and whether it
// was sent) and reports to report; a nil report counts nothing.
func progressTo(report func(Progress), total int64) func(sent bool) {
	if report == nil {
		return func(bool) {}
	}
	p := Progress{Total: total}
	return func(sent bool) {
		p.Read++
		if sent {
			p.Sent++
		}
		report(p)
	}
}
