package router

import (
	"context"
	"time"
)

// Hooks for the external tests (package router_test), which use testkit
// and so cannot be internal tests: testkit imports router.

// DedupStore is the deduplication store of a stage (dedup.go).
type DedupStore = dedupStore

// NewDedupStore is newDedupStore.
var NewDedupStore = newDedupStore

func (d *dedupStore) Restore(ctx context.Context, partitions []int32) error {
	return d.restore(ctx, partitions)
}
func (d *dedupStore) Release(partitions []int32)            { d.release(partitions) }
func (d *dedupStore) Seen(partition int32, key string) bool { return d.seen(partition, key) }
func (d *dedupStore) Record(partition int32, key string) error {
	return d.record(partition, key)
}
func (d *dedupStore) Len() int         { return d.len() }
func (d *dedupStore) Evictions() int64 { return d.evictions() }

// Remember holds partition (if it is not held) and remembers key as
// recorded at time at, in memory only.
func (d *dedupStore) Remember(partition int32, key string, at time.Time) {
	if d.part(partition) == nil {
		d.hold([]int32{partition})
	}
	d.remember(d.part(partition), dedupDigestOfString(key), at.Add(d.window).UnixNano(), time.Now().UnixNano())
}

// SetRestoreIdle sets how long restore waits for a changelog record before
// taking the rest of a partition for a gap.
func (d *dedupStore) SetRestoreIdle(idle time.Duration) { d.idle = idle }
