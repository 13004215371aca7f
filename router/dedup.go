package router

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/millrace/millrace/kafkaops"
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

// dedupEntry is a key in a partition's queue: its digest and when it
// expires (Unix nanoseconds).
type dedupEntry struct {
	digest  dedupDigest
	expires int64
}

// dedupQueue is a FIFO of entries in fixed-size chunks: it never copies
// entries to grow and hands a chunk back to the GC as soon as its entries
// are popped.
type dedupQueue struct {
	chunks     []*[dedupChunkLen]dedupEntry
	head, tail int // next entry to pop in chunks[0]; next free slot in the last chunk
	n          int
}

func (q *dedupQueue) push(e dedupEntry) {
	if len(q.chunks) == 0 || q.tail == dedupChunkLen {
		q.chunks = append(q.chunks, new([dedupChunkLen]dedupEntry))
		q.tail = 0
	}
	q.chunks[len(q.chunks)-1][q.tail] = e
	q.tail++
	q.n++
}

// front is the oldest entry; the queue must not be empty.
func (q *dedupQueue) front() *dedupEntry { return &q.chunks[0][q.head] }

// pop removes the oldest entry; the queue must not be empty.
func (q *dedupQueue) pop() dedupEntry {
	e := q.chunks[0][q.head]
	q.head++
	q.n--
	switch {
	case q.n == 0: // keep one chunk for the next push
		q.chunks[0] = q.chunks[len(q.chunks)-1]
		clear(q.chunks[1:])
		q.chunks = q.chunks[:1]
		q.head, q.tail = 0, 0
	case q.head == dedupChunkLen:
		q.chunks[0] = nil
		q.chunks = q.chunks[1:]
		q.head = 0
	}
	return e
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

// evict forgets the oldest keys over all partitions until the store holds
// at most max minus a small slack (so that a full store does not scan its
// partitions on every record).
func (d *dedupStore) evict() {
	d.evictMu.Lock()
	defer d.evictMu.Unlock()
	target := d.max - d.max/1024
	var n int64
	for d.total.Load() > target {
		// The partition whose oldest entry is the oldest of all, and the
		// oldest entry of every other partition: pop up to that.
		var oldest *dedupPartition
		first, second := int64(math.MaxInt64), int64(math.MaxInt64)
		for _, p := range *d.parts.Load() {
			p.mu.Lock()
			if p.queue.n > 0 {
				switch e := p.queue.front().expires; {
				case e < first:
					oldest, first, second = p, e, first
				case e < second:
					second = e
				}
			}
			p.mu.Unlock()
		}
		if oldest == nil {
			break
		}
		oldest.mu.Lock()
		for k := 0; !oldest.gone && oldest.queue.n > 0 && d.total.Load() > target &&
			(k == 0 || oldest.queue.front().expires <= second); k++ {
			d.pop(oldest)
			n++
		}
		oldest.shrink()
		oldest.mu.Unlock()
	}
	if n == 0 {
		return
	}
	d.evicted.Add(n)
	d.unwarned.Add(n)
	now := time.Now().UnixNano()
	if last := d.lastWarn.Load(); now-last >= int64(dedupWarnEvery) && d.lastWarn.CompareAndSwap(last, now) {
		d.log.Warn("dedup: too many keys to remember; forgetting the oldest before their window ends, so their duplicates may run again",
			"changelog", d.plan.Changelog, "max_keys", d.max, "window", d.window,
			"forgotten", d.unwarned.Swap(0), "forgotten_total", d.evicted.Load())
	}
}

// len is how many keys the store holds.
func (d *dedupStore) len() int {
	n := 0
	for _, p := range *d.parts.Load() {
		p.mu.Lock()
		n += len(p.keys)
		p.mu.Unlock()
	}
	return n
}

// evictions is how many keys were forgotten before their window ended, for
// lack of room.
func (d *dedupStore) evictions() int64 { return d.evicted.Load() }

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

// restore loads the keys recorded for these partitions: it reads each
// changelog partition from its oldest offset up to its high-water mark as
// of the call, several partitions at once, and skips keys already expired.
// Partitions already held are left alone. ctx bounds the reading. A
// partition that fails is not held; the error names it.
func (d *dedupStore) restore(ctx context.Context, partitions []int32) error {
	d.restoreMu.Lock()
	defer d.restoreMu.Unlock()
	var todo []int32
	for _, n := range partitions {
		if d.part(n) == nil && !slices.Contains(todo, n) {
			todo = append(todo, n)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	start := time.Now()
	consumer, err := sarama.NewConsumerFromClient(d.client)
	if err != nil {
		return fmt.Errorf("dedup: restore changelog %s: %w", d.plan.Changelog, err)
	}
	defer consumer.Close()
	held := d.hold(todo)
	stats := make([]dedupRestoreStats, len(todo))
	errs := make([]error, len(todo))
	sem := make(chan struct{}, dedupRestoreParallel)
	var wg sync.WaitGroup
	for i, n := range todo {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = d.restorePartition(ctx, consumer, n, held[i], &stats[i])
		})
	}
	wg.Wait()
	var failed []int32
	var sum dedupRestoreStats
	for i, err := range errs {
		if err != nil {
			failed = append(failed, todo[i])
		}
		sum.records += stats[i].records
		sum.keys += stats[i].keys
		sum.expired += stats[i].expired
		sum.bad += stats[i].bad
	}
	if len(failed) > 0 {
		d.release(failed)
		return errors.Join(errs...)
	}
	d.log.Info("dedup: restored keys", "changelog", d.plan.Changelog, "partitions", todo,
		"records", sum.records, "keys", sum.keys, "expired", sum.expired, "took", time.Since(start).Round(time.Millisecond))
	if sum.bad > 0 {
		d.log.Warn("dedup: changelog records with neither a time nor a timestamp were skipped",
			"changelog", d.plan.Changelog, "records", sum.bad)
	}
	return nil
}

type dedupRestoreStats struct {
	records, keys, expired, bad int
}

// restorePartition reads changelog partition n into p.
func (d *dedupStore) restorePartition(ctx context.Context, consumer sarama.Consumer, n int32, p *dedupPartition, st *dedupRestoreStats) error {
	topic := d.plan.Changelog
	hwm, err := kafkaops.GetOffset(ctx, d.client, topic, n, sarama.OffsetNewest)
	if err != nil {
		return fmt.Errorf("dedup: restore changelog %s/%d: high-water mark: %w", topic, n, err)
	}
	oldest, err := kafkaops.GetOffset(ctx, d.client, topic, n, sarama.OffsetOldest)
	if err != nil {
		return fmt.Errorf("dedup: restore changelog %s/%d: oldest offset: %w", topic, n, err)
	}
	if hwm <= oldest {
		return nil
	}
	// Retention may delete the records being read; start again from
	// the new oldest offset then (keys read twice are no-ops).
	for attempt := 1; ; attempt++ {
		again, err := d.readChangelog(ctx, consumer, n, hwm, p, st)
		if err != nil || !again {
			return err
		}
		if attempt == 3 {
			return fmt.Errorf("dedup: restore changelog %s/%d: the log start kept moving past the reader", topic, n)
		}
	}
}

// readChangelog reads changelog partition n from its oldest offset until it
// has seen the record before hwm. It returns again=true when the partition
// consumer stopped because its offset fell out of range.
//
// A compacted log has gaps in its offsets, so the record at hwm-1 might
// never come (it cannot be compacted away, being the latest of its key, but
// it could be a transaction marker). So when no record came for d.idle
// while the consumer had fetched and saw the log end at or past hwm, the
// rest is taken for a gap.
func (d *dedupStore) readChangelog(ctx context.Context, consumer sarama.Consumer, n int32, hwm int64, p *dedupPartition, st *dedupRestoreStats) (again bool, err error) {
	topic := d.plan.Changelog
	pc, err := consumer.ConsumePartition(topic, n, sarama.OffsetOldest)
	if errors.Is(err, sarama.ErrOffsetOutOfRange) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("dedup: restore changelog %s/%d: %w", topic, n, err)
	}
	defer pc.Close()
	idle := time.NewTimer(d.idle)
	defer idle.Stop()
	now := time.Now()
	last := int64(-1)
	var lastErr error
	for {
		select {
		case <-ctx.Done():
			err := fmt.Errorf("dedup: restore changelog %s/%d: read up to offset %d of %d: %w", topic, n, last, hwm-1, ctx.Err())
			if lastErr != nil {
				err = fmt.Errorf("%w (last error: %v)", err, lastErr)
			}
			return false, err
		case m, ok := <-pc.Messages():
			if !ok {
				return true, nil
			}
			last = m.Offset
			d.restoreRecord(p, m, now, st)
			if m.Offset >= hwm-1 {
				return false, nil
			}
			idle.Reset(d.idle)
		case e, ok := <-pc.Errors():
			if !ok {
				return true, nil
			}
			if errors.Is(e, sarama.ErrOffsetOutOfRange) {
				return true, nil
			}
			lastErr = e
		case <-idle.C:
			if pc.HighWaterMarkOffset() < hwm {
				idle.Reset(d.idle) // no fetch came back yet
				continue
			}
			d.log.Warn("dedup: changelog records below the high-water mark never came; taking them for a gap",
				"changelog", topic, "partition", n, "last_offset", last, "high_water_mark", hwm)
			return false, nil
		}
	}
}

// restoreRecord remembers the key of one changelog record, unless it has
// expired. A record without a value (a tombstone) forgets its key.
func (d *dedupStore) restoreRecord(p *dedupPartition, m *sarama.ConsumerMessage, now time.Time, st *dedupRestoreStats) {
	st.records++
	digest := dedupDigestOf(m.Key)
	if m.Value == nil {
		d.forget(p, digest)
		return
	}
	at, err := time.Parse(time.RFC3339Nano, string(m.Value))
	if err != nil {
		if m.Timestamp.IsZero() || m.Timestamp.Unix() <= 0 {
			st.bad++
			return
		}
		at = m.Timestamp
	}
	if at.After(p.last) {
		p.last = at
	}
	expires := at.Add(d.window)
	if !expires.After(now) {
		st.expired++
		return
	}
	st.keys++
	d.remember(p, digest, expires.UnixNano(), now.UnixNano())
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
