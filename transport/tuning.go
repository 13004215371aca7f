package transport

import (
	"time"

	"github.com/IBM/sarama"
)

// Tuning holds the client settings a pipelines file may change from
// millrace's defaults (the broker block's linger, fetch_min_bytes,
// fetch_max_wait and max_partition_fetch_bytes, named after the Java
// client's settings they mirror). A zero field keeps the default of
// [NewSaramaConfig] and [NewProducerConfig].
type Tuning struct {
	// Linger is how long the producer holds records to batch them before
	// it sends a request (linger.ms); 0 sends as soon as the previous
	// request to the broker was answered.
	Linger time.Duration
	// FetchMinBytes is how many bytes a fetch waits for (fetch.min.bytes),
	// at most FetchMaxWait (fetch.max.wait.ms).
	FetchMinBytes int32
	FetchMaxWait  time.Duration
	// MaxPartitionFetchBytes is how many bytes of one partition a fetch
	// returns at most (max.partition.fetch.bytes; a larger record batch
	// still comes whole). It bounds what a consumer holds per partition,
	// decompressed several times over for compressed batches; see
	// [DefaultMaxPartitionFetchBytes].
	MaxPartitionFetchBytes int32
}

// ApplyConsumer sets the fetch settings of t on c.
func (t Tuning) ApplyConsumer(c *sarama.Config) {
	if t.FetchMinBytes > 0 {
		c.Consumer.Fetch.Min = t.FetchMinBytes
	}
	if t.FetchMaxWait > 0 {
		c.Consumer.MaxWaitTime = t.FetchMaxWait
	}
	if t.MaxPartitionFetchBytes > 0 {
		c.Consumer.Fetch.Default = t.MaxPartitionFetchBytes
	}
}

// ApplyProducer sets the producer settings of t on c.
func (t Tuning) ApplyProducer(c *sarama.Config) {
	if t.Linger > 0 {
		c.Producer.Flush.Frequency = t.Linger
	}
}
