package pipeline

import (
	"time"

	"github.com/millrace/millrace/transport"
)

// Bounds of the broker block's client tuning.
const (
	maxLinger              = 10 * time.Second
	minFetchMaxWait        = time.Millisecond
	maxFetchMaxWait        = 10 * time.Second
	maxFetchBytes          = 256 << 20
	minPartitionFetchBytes = 1 << 10
)

// validateTuning checks the client tuning of the broker block.
func (b *Broker) validateTuning(p *problems) {
	if b.Set("linger") {
		checkDuration(p, b.Positions, "linger", b.Linger, 0, maxLinger, " (send at once)", "")
	}
	if b.Set("fetch_max_wait") {
		checkDuration(p, b.Positions, "fetch_max_wait", b.FetchMaxWait, minFetchMaxWait, maxFetchMaxWait, "", "")
	}
	if b.Set("fetch_min_bytes") {
		checkRange(p, b.Positions, "fetch_min_bytes", b.FetchMinBytes, 1, maxFetchBytes)
	}
	if b.Set("max_partition_fetch_bytes") {
		checkRange(p, b.Positions, "max_partition_fetch_bytes", b.MaxPartitionFetchBytes, minPartitionFetchBytes, maxFetchBytes)
	}
}

// tuning is the client tuning of the broker block.
func (b *Broker) tuning() transport.Tuning {
	return transport.Tuning{Linger: b.Linger, FetchMinBytes: int32(b.FetchMinBytes), FetchMaxWait: b.FetchMaxWait,
		MaxPartitionFetchBytes: int32(b.MaxPartitionFetchBytes)}
}
