package router

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/transport"
)

// Deduplication state of a stage.
//
// The keys a stage has processed are kept per input partition p, in memory
// and in partition p of the stage's compacted changelog topic
// (DedupPlan.Changelog, as many partitions as the input). A changelog record
// is keyed by the dedup key; its value is the time the key was recorded, in
// RFC 3339 UTC (readable with kcat). A key is remembered until that time
// plus the window configured now, so a changed window applies to keys
// restored after a restart too.
//
// In memory a key is a 128-bit digest (a false "seen" drops a record, so
// never a 64-bit hash) with its expiry, in a map and in a FIFO queue per
// partition. Keys expire lazily from the front of the queue, and the total
// over all partitions is capped at DedupPlan.MaxKeys: beyond it the oldest
// keys are forgotten first, so memory is bounded by MaxKeys, not by traffic.

// dedupTimeLayout is how a changelog record's value spells the time its key
// was recorded: RFC 3339 in UTC, to the millisecond (Kafka's precision).
const dedupTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// dedupChunkLen is how many entries a chunk of a partition's queue holds.
const dedupChunkLen = 512

// dedupRestoreParallel is how many changelog partitions restore reads at once.
const dedupRestoreParallel = 8

// dedupWarnEvery spaces the warnings about keys forgotten for lack of room.
const dedupWarnEvery = time.Minute

// dedupDigest is the first 128 bits of the SHA-256 of a key.
type dedupDigest [16]byte

func dedupDigestOf(key []byte) dedupDigest {
	sum := sha256.Sum256(key)
	return dedupDigest(sum[:16])
}

// dedupDigestOfString is dedupDigestOf without copying the key (a copy of
// a key over 32 bytes, such as a UUID, would be allocated on the heap).
func dedupDigestOfString(key string) dedupDigest {
	return dedupDigestOf(transport.ReadOnlyBytes(key))
}

// dedupPartition is the state of one input partition.
type dedupPartition struct {
	mu sync.Mutex
	// keys maps a digest to its latest expiry. Every key has an entry in
	// queue with that expiry; the queue may hold older entries of a key
	// too (recorded again), which do not remove it when they pop.
	keys  map[dedupDigest]int64
	queue dedupQueue
	// peak is the most keys the map held since it was last built: Go maps
	// never shrink, so it is rebuilt when it holds far fewer.
	peak int
	// gone is set when the partition is released.
	gone bool
	// last is when the newest key restored from the changelog was recorded.
	last time.Time
}

// dedupStore is the deduplication state of a stage in one process: the keys
// recorded for the input partitions it owns. All methods are safe for
// concurrent use.
type dedupStore struct {
	plan   pipeline.DedupPlan
	window time.Duration
	max    int64
	client sarama.Client
	pub    *transport.Publisher
	log    *slog.Logger
	// idle is how long restore waits for the next changelog record before
	// taking the rest of a partition for a gap (see readChangelog).
	idle time.Duration

	// parts is copied on write under partsMu, so the hot path reads it
	// without a lock.
	parts   atomic.Pointer[map[int32]*dedupPartition]
	partsMu sync.Mutex
	// restoreMu serializes restores, so a partition is restored once.
	restoreMu sync.Mutex
	// total is the number of queue entries over all partitions; it changes
	// only under the lock of the partition whose queue changes.
	total   atomic.Int64
	evictMu sync.Mutex
	// evicted counts keys forgotten before their time for lack of room:
	// in all, and since the last warning.
	evicted, unwarned atomic.Int64
	lastWarn          atomic.Int64
}

// newDedupStore returns the deduplication store of a stage: client is used
// to read the changelog on restore; pub writes it.
func newDedupStore(plan pipeline.DedupPlan, client sarama.Client, pub *transport.Publisher, log *slog.Logger) *dedupStore {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &dedupStore{plan: plan, window: plan.Window, max: int64(plan.MaxKeys),
		client: client, pub: pub, log: log, idle: 10 * time.Second}
	if d.window <= 0 {
		d.window = pipeline.DefaultDedupWindow
	}
	if d.max <= 0 {
		d.max = pipeline.DefaultDedupMaxKeys
	}
	if client != nil {
		d.idle = max(d.idle, 10*client.Config().Consumer.MaxWaitTime)
	}
	d.parts.Store(&map[int32]*dedupPartition{})
	return d
}

// part returns the state of a partition, or nil when it is not held.
func (d *dedupStore) part(partition int32) *dedupPartition {
	return (*d.parts.Load())[partition]
}

// seen reports whether key was recorded for partition within the window.
// It is false for a partition that is not held (not restored, or released).
func (d *dedupStore) seen(partition int32, key string) bool {
	p := d.part(partition)
	if p == nil {
		return false
	}
	digest := dedupDigestOfString(key)
	now := time.Now().UnixNano()
	p.mu.Lock()
	d.expire(p, now)
	expires, ok := p.keys[digest]
	p.mu.Unlock()
	return ok && expires > now
}

// record writes key to the changelog partition of the input partition,
// waits for the broker's ack and then remembers the key. A key recorded for
// a partition that is not held is only written to the changelog.
func (d *dedupStore) record(partition int32, key string) error {
	at := time.Now().UTC().Truncate(time.Millisecond)
	r := &sarama.ProducerMessage{Topic: d.plan.Changelog,
		Key:   transport.Pin(sarama.ByteEncoder(key), partition),
		Value: sarama.ByteEncoder(at.Format(dedupTimeLayout))}
	if err := d.pub.Send(d.plan.Changelog, []*sarama.ProducerMessage{r}); err != nil {
		return fmt.Errorf("dedup: record key %q in changelog %s/%d: %w", key, d.plan.Changelog, partition, err)
	}
	if p := d.part(partition); p != nil {
		d.remember(p, dedupDigestOfString(key), at.Add(d.window).UnixNano(), time.Now().UnixNano())
	}
	return nil
}

// remember adds a key to a partition, then makes room if the store is full.
func (d *dedupStore) remember(p *dedupPartition, digest dedupDigest, expires, now int64) {
	p.mu.Lock()
	if p.gone {
		p.mu.Unlock()
		return
	}
	d.expire(p, now)
	if old, ok := p.keys[digest]; ok && old >= expires {
		p.mu.Unlock()
		return
	}
	p.keys[digest] = expires
	p.queue.push(dedupEntry{digest, expires})
	p.peak = max(p.peak, len(p.keys))
	full := d.total.Add(1) > d.max
	p.mu.Unlock()
	if full {
		d.evict()
	}
}

// forget removes a key from a partition (a tombstone in the changelog).
func (d *dedupStore) forget(p *dedupPartition, digest dedupDigest) {
	p.mu.Lock()
	delete(p.keys, digest)
	p.mu.Unlock()
}

// pop removes the oldest entry of a partition, and its key unless the key
// was recorded again later. p.mu must be held.
func (d *dedupStore) pop(p *dedupPartition) {
	e := p.queue.pop()
	d.total.Add(-1)
	if exp, ok := p.keys[e.digest]; ok && exp == e.expires {
		delete(p.keys, e.digest)
	}
}

// expire pops the expired entries at the front of a partition's queue.
// p.mu must be held.
func (d *dedupStore) expire(p *dedupPartition, now int64) {
	if p.queue.n == 0 || p.queue.front().expires > now {
		return
	}
	for p.queue.n > 0 && p.queue.front().expires <= now {
		d.pop(p)
	}
	p.shrink()
}

// shrink rebuilds a partition's map once it holds under a quarter of its
// peak, since Go maps never give memory back. p.mu must be held.
func (p *dedupPartition) shrink() {
	if p.peak < 4096 || len(p.keys) >= p.peak/4 {
		return
	}
	keys := make(map[dedupDigest]int64, len(p.keys))
	for k, v := range p.keys {
		keys[k] = v
	}
	p.keys = keys
	p.peak = len(keys)
}

// hold starts holding the partitions that are not held yet, with no keys,
// and returns their state (nil for those already held).
func (d *dedupStore) hold(partitions []int32) []*dedupPartition {
	d.partsMu.Lock()
	defer d.partsMu.Unlock()
	old := *d.parts.Load()
	parts := make(map[int32]*dedupPartition, len(old)+len(partitions))
	for k, v := range old {
		parts[k] = v
	}
	held := make([]*dedupPartition, len(partitions))
	for i, n := range partitions {
		if _, ok := parts[n]; !ok {
			held[i] = &dedupPartition{keys: map[dedupDigest]int64{}}
			parts[n] = held[i]
		}
	}
	d.parts.Store(&parts)
	return held
}

// release forgets partitions that were revoked and frees their memory.
func (d *dedupStore) release(partitions []int32) {
	d.partsMu.Lock()
	old := *d.parts.Load()
	parts := make(map[int32]*dedupPartition, len(old))
	var gone []*dedupPartition
	for k, v := range old {
		if slices.Contains(partitions, k) {
			gone = append(gone, v)
		} else {
			parts[k] = v
		}
	}
	d.parts.Store(&parts)
	d.partsMu.Unlock()
	for _, p := range gone {
		p.mu.Lock()
		p.gone = true
		d.total.Add(-int64(p.queue.n))
		p.keys, p.queue = nil, dedupQueue{}
		p.mu.Unlock()
	}
}

// held returns the partitions the store holds.
func (d *dedupStore) held() []int32 {
	parts := *d.parts.Load()
	ps := make([]int32, 0, len(parts))
	for p := range parts {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// lastRecorded is when the newest key restored for partition was recorded
// (zero if none, or the partition is not held).
func (d *dedupStore) lastRecorded(partition int32) time.Time {
	p := d.part(partition)
	if p == nil {
		return time.Time{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}
