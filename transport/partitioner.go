package transport

import (
	"errors"
	"fmt"

	"github.com/IBM/sarama"
)

// NewMurmur2Partitioner returns a partitioner that places keyed records as
// the Java client's default partitioner does (murmur2 of the key, positive,
// modulo the partition count), so that millrace and Java producers agree on
// which partition a key lives in. Records without a key are spread
// round-robin.
func NewMurmur2Partitioner(topic string) sarama.Partitioner {
	return &murmur2Partitioner{fallback: sarama.NewRoundRobinPartitioner(topic)}
}

type murmur2Partitioner struct{ fallback sarama.Partitioner }

// errNoSuchPartition is a record pinned to a partition its topic lacks.
var errNoSuchPartition = errors.New("no such partition")

func (p *murmur2Partitioner) Partition(m *sarama.ProducerMessage, n int32) (int32, error) {
	if pin, ok := m.Key.(pinned); ok {
		if pin.partition >= n {
			return -1, fmt.Errorf("%w: record pinned to partition %d, topic %s has %d", errNoSuchPartition, pin.partition, m.Topic, n)
		}
		return pin.partition, nil
	}
	if m.Key == nil {
		return p.fallback.Partition(m, n)
	}
	key, err := m.Key.Encode()
	if err != nil {
		return -1, err
	}
	return int32(murmur2(key)&0x7fffffff) % n, nil
}

func (p *murmur2Partitioner) RequiresConsistency() bool { return true }

// murmur2 is Kafka's Utils.murmur2 (seed 0x9747b28c).
func murmur2(data []byte) uint32 {
	const m, r = 0x5bd1e995, 24
	length := len(data)
	h := uint32(0x9747b28c) ^ uint32(length)
	for i := 0; i+4 <= length; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[length&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// PartitionOf is the partition of n that a record with key goes to under
// the murmur2 partitioner: Kafka's Utils.toPositive(murmur2(key)) % n, as
// the Java client's default partitioner computes it.
func PartitionOf(key []byte, n int32) int32 { return int32(murmur2(key)&0x7fffffff) % n }
