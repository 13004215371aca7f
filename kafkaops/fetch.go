package kafkaops

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/IBM/sarama"
)

// fetchMaxBytes bounds what one fetch of [FetchRange] returns: 8 MiB.
const fetchMaxBytes = 8 << 20

// FetchRange calls fn for each record of topic/partition from offset from
// up to (not including) end, with Fetch requests (version 12, as sarama's
// consumer sends them) sent straight to the partition's leader, which
// answers at once (max wait 0): no consumer, so no fetch left waiting on
// the connection afterwards and no start-up delay. For small, known
// ranges — the outputs of a job. It stops early, without error, at the
// partition's high-water mark (offsets past it do not exist yet), goes on
// from the log start when from is before it (retention removed those
// records), and skips offsets without a record (compaction, control
// batches). Errors: the leader's, the request's, or ctx's when it ends.
func FetchRange(ctx context.Context, client sarama.Client, topic string, partition int32, from, end int64,
	fn func(*sarama.ConsumerMessage)) error {
	for from < end {
		recs, next, err := fetchAt(ctx, client, topic, partition, from)
		if err != nil {
			return err
		}
		for _, m := range recs {
			if m.Offset < end {
				fn(m)
			}
		}
		if next <= from { // nothing at or after from: the end of the log
			return nil
		}
		from = next
	}
	return nil
}

// FetchOffsets calls fn for the record at each of offsets (ascending) of
// topic/partition that has one: one fetch per stretch of the log that
// holds a wanted offset, so that the records between offsets far apart (a
// job's few outputs or events in a busy partition) are not read. Offsets
// without a record (compacted away, removed by retention, past the end)
// are skipped. Errors as [FetchRange].
func FetchOffsets(ctx context.Context, client sarama.Client, topic string, partition int32, offsets []int64,
	fn func(*sarama.ConsumerMessage)) error {
	for i := 0; i < len(offsets); {
		recs, next, err := fetchAt(ctx, client, topic, partition, offsets[i])
		if err != nil {
			return err
		}
		for _, m := range recs {
			if _, ok := slices.BinarySearch(offsets[i:], m.Offset); ok {
				fn(m)
			}
		}
		if next <= offsets[i] { // the end of the log: none of the rest exists
			return nil
		}
		for i < len(offsets) && offsets[i] < next {
			i++
		}
	}
	return nil
}

// fetchAt fetches topic/partition from offset from (or its log start, if
// later) and returns the records of the answer at or after from, and the
// offset after the last batch it held (from when it held none: the end of
// the log).
func fetchAt(ctx context.Context, client sarama.Client, topic string, partition int32, from int64) ([]*sarama.ConsumerMessage, int64, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, from, err
		}
		leader, err := client.Leader(topic, partition)
		if err != nil {
			return nil, from, fmt.Errorf("fetch %s/%d: %w", topic, partition, err)
		}
		req := &sarama.FetchRequest{Version: 12, MaxWaitTime: 0, MinBytes: 1, MaxBytes: fetchMaxBytes,
			SessionID: 0, SessionEpoch: -1}
		req.AddBlock(topic, partition, from, fetchMaxBytes, -1)
		resp, err := leader.Fetch(req)
		if err != nil {
			return nil, from, fmt.Errorf("fetch %s/%d from %d: %w", topic, partition, from, err)
		}
		block := resp.GetBlock(topic, partition)
		switch {
		case block == nil:
			return nil, from, fmt.Errorf("fetch %s/%d from %d: no answer for the partition", topic, partition, from)
		case block.Err == sarama.ErrOffsetOutOfRange:
			// Before the log start (retention removed those records: they
			// are gone) or past the end (nothing there yet).
			start, err := GetOffset(ctx, client, topic, partition, sarama.OffsetOldest)
			if err != nil || start <= from {
				return nil, from, err
			}
			from = start
			continue
		case block.Err == sarama.ErrNotLeaderForPartition || block.Err == sarama.ErrLeaderNotAvailable:
			_ = client.RefreshMetadata(topic)
			fallthrough
		case block.Err != sarama.ErrNoError:
			return nil, from, fmt.Errorf("fetch %s/%d from %d: %w", topic, partition, from, block.Err)
		}
		var recs []*sarama.ConsumerMessage
		next := from
		for _, rs := range block.RecordsSet {
			b := rs.RecordBatch
			if b == nil {
				continue // a message set of the oldest formats: Kafka 0.11 and later write none
			}
			if !b.PartialTrailingRecord {
				next = max(next, b.FirstOffset+int64(b.LastOffsetDelta)+1) // control batches too
			}
			if b.Control {
				continue
			}
			for _, r := range b.Records {
				off := b.FirstOffset + r.OffsetDelta
				if off < from {
					continue
				}
				ts := b.FirstTimestamp.Add(r.TimestampDelta)
				if b.LogAppendTime {
					ts = b.MaxTimestamp
				}
				recs = append(recs, &sarama.ConsumerMessage{Topic: topic, Partition: partition, Offset: off, Key: r.Key,
					Value: r.Value, Headers: r.Headers, Timestamp: ts.In(time.Local)})
				next = max(next, off+1)
			}
		}
		return recs, next, nil
	}
}
