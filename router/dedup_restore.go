package router

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/millrace/millrace/kafkaops"
)

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
	// the new oldest offset then (keys read twice are no-ops). A
	// compacted log has gaps in its offsets, so the record at hwm-1 might
	// never come (it cannot be compacted away, being the latest of its
	// key, but it could be a transaction marker): the reader takes the
	// rest for a gap once it saw the log end at or past hwm (d.idle).
	now := time.Now()
	for attempt := 1; ; attempt++ {
		_, err := kafkaops.ReadRangeWith(ctx, consumer, topic, n, oldest, hwm, kafkaops.ReadOptions{Idle: d.idle, Patient: true},
			func(m *sarama.ConsumerMessage) (bool, error) {
				d.restoreRecord(p, m, now, st)
				return true, nil
			})
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, sarama.ErrOffsetOutOfRange):
			return fmt.Errorf("dedup: restore changelog %s/%d: %w", topic, n, err)
		case attempt == 3:
			return fmt.Errorf("dedup: restore changelog %s/%d: the log start kept moving past the reader", topic, n)
		}
		if oldest, err = kafkaops.GetOffset(ctx, d.client, topic, n, sarama.OffsetOldest); err != nil {
			return fmt.Errorf("dedup: restore changelog %s/%d: oldest offset: %w", topic, n, err)
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
