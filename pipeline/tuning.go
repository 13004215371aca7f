package pipeline

import (
	"time"

	"github.com/millrace/millrace/transport"
)

// Bounds of the broker block's client tuning:
//
//   - linger delays every record a producer sends, the HTTP API's too,
//     whose produce_timeout (at least 1s) counts from the hand-over.
//   - A fetch the broker holds for fetch_max_wait holds up a stop or a
//     rebalance: sarama lets a partition go only once the fetch in flight
//     returned. (Heartbeats and commits no longer wait behind it: they go
//     to the coordinator over connections of their own,
//     transport/coordinator.go.)
//   - A fetch waits for fetch_min_bytes across its partitions, each giving
//     at most max_partition_fetch_bytes.
const (
	maxLinger              = 100 * time.Millisecond
	minFetchMaxWait        = time.Millisecond
	maxFetchMaxWait        = time.Second
	maxFetchMinBytes       = 1 << 20
	minPartitionFetchBytes = 1 << 10
	maxPartitionFetchBytes = 64 << 20
)

// validateTuning checks the client tuning of the broker block.
func (b *Broker) validateTuning(p *problems) {
	if b.Set("linger") {
		checkDuration(p, b.Positions, "linger", b.Linger, 0, maxLinger, " (send at once)", "")
	}
	if b.Set("fetch_max_wait") {
		checkDuration(p, b.Positions, "fetch_max_wait", b.FetchMaxWait, minFetchMaxWait, maxFetchMaxWait, "",
			" (a stop or a rebalance waits for the fetch in flight)")
		if b.FetchMaxWait%time.Millisecond != 0 {
			at := b.Of("fetch_max_wait")
			p.add(at, "fetch_max_wait must be whole milliseconds (Kafka's unit), got %s", p.shown(at, formatDuration(b.FetchMaxWait)))
		}
	}
	if b.Set("fetch_min_bytes") {
		checkRange(p, b.Positions, "fetch_min_bytes", b.FetchMinBytes, 1, maxFetchMinBytes)
	}
	if b.Set("max_partition_fetch_bytes") {
		checkRange(p, b.Positions, "max_partition_fetch_bytes", b.MaxPartitionFetchBytes, minPartitionFetchBytes, maxPartitionFetchBytes)
	}
}

// tuning is the client tuning of the broker block.
func (b *Broker) tuning() transport.Tuning {
	return transport.Tuning{Linger: b.Linger, FetchMinBytes: int32(b.FetchMinBytes), FetchMaxWait: b.FetchMaxWait,
		MaxPartitionFetchBytes: int32(b.MaxPartitionFetchBytes)}
}
