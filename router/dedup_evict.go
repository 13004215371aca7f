package router

import (
	"math"
	"time"
)

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
