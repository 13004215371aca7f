package kafkaops

import (
	"context"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// fetchMaxBytes bounds what one fetch of [FetchRange] returns: 8 MiB.
const fetchMaxBytes = 8 << 20

// FetchRange calls fn for each record of topic/partition from offset from
// up to (not including) end, with Fetch requests (version 12, read
// committed off: as sarama's consumer) sent straight to the partition's
// leader that the broker answers at once (max wait 0): no consumer, so no
// fetch left waiting on the connection afterwards and no start-up delay.
// For small, known ranges — the outputs of a job. It stops early, without
// error, at the partition's high-water mark (offsets past it do not exist
// yet), goes on from the log start when from is before it (retention
// removed those records), and skips offsets without a record (compaction,
// control batches).
// Errors: the leader's, the request's, or ctx's when it ends.
func FetchRange(ctx context.Context, client sarama.Client, topic string, partition int32, from, end int64,
	fn func(*sarama.ConsumerMessage)) error {
	for from < end {
		if err := ctx.Err(); err != nil {
			return err
		}
		leader, err := client.Leader(topic, partition)
		if err != nil {
			return fmt.Errorf("fetch %s/%d: %w", topic, partition, err)
		}
		req := &sarama.FetchRequest{Version: 12, MaxWaitTime: 0, MinBytes: 1, MaxBytes: fetchMaxBytes,
			SessionID: 0, SessionEpoch: -1}
		req.AddBlock(topic, partition, from, fetchMaxBytes, -1)
		resp, err := leader.Fetch(req)
		if err != nil {
			return fmt.Errorf("fetch %s/%d from %d: %w", topic, partition, from, err)
		}
		block := resp.GetBlock(topic, partition)
		if block == nil {
			return fmt.Errorf("fetch %s/%d from %d: no answer for the partition", topic, partition, from)
		}
		if block.Err == sarama.ErrOffsetOutOfRange {
			// Before the log start (retention removed those records: they
			// are gone) or past the end (nothing there yet).
			start, err := GetOffset(ctx, client, topic, partition, sarama.OffsetOldest)
			if err != nil || start <= from {
				return err
			}
			from = start
			continue
		}
		if block.Err != sarama.ErrNoError {
			if block.Err == sarama.ErrNotLeaderForPartition || block.Err == sarama.ErrLeaderNotAvailable {
				_ = client.RefreshMetadata(topic)
			}
			return fmt.Errorf("fetch %s/%d from %d: %w", topic, partition, from, block.Err)
		}
		next := from
		for _, rs := range block.RecordsSet {
			b := rs.RecordBatch
			if b == nil || b.Control {
				continue
			}
			for _, r := range b.Records {
				off := b.FirstOffset + r.OffsetDelta
				if off < from || off >= end {
					continue
				}
				ts := b.FirstTimestamp.Add(r.TimestampDelta)
				if b.LogAppendTime {
					ts = b.MaxTimestamp
				}
				fn(&sarama.ConsumerMessage{Topic: topic, Partition: partition, Offset: off, Key: r.Key, Value: r.Value,
					Headers: r.Headers, Timestamp: ts.In(time.Local)})
			}
			next = max(next, b.FirstOffset+int64(b.LastOffsetDelta)+1)
		}
		if next == from { // nothing at or after from: the end of the log
			return nil
		}
		from = next
	}
	return nil
}
