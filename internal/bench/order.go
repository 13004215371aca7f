package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/IBM/sarama"
)

// keyedRecord is an output record's key and id (see parsePayload).
type keyedRecord struct {
	key string
	id  int64
}

// keyOrder is what checkKeyOrder found in an output topic.
type keyOrder struct {
	// records and keys count the records with an id and their distinct
	// keys.
	records, keys int
	// violations counts the records of a key that came after a record of
	// the same key (in the same partition) with a higher id: each step
	// down of a key's ids.
	violations int
	// repeats counts records whose id the partition held before: at least
	// once, a redelivery (after a rebalance, from the committed offset on)
	// repeats records, which is not a reordering.
	repeats int
	// split counts keys found in more than one partition (a key lives in
	// one partition: one would mean the partitioner disagreed).
	split int
	// example describes the first violation, "" if none.
	example string
}

// ok says whether every key's ids rose in its partition.
func (k keyOrder) ok() bool { return k.violations == 0 && k.split == 0 }

// String is a one-line account, for the log and the report.
func (k keyOrder) String() string {
	s := fmt.Sprintf("%d records of %d keys: %d order violations", k.records, k.keys, k.violations)
	if k.repeats > 0 {
		s += fmt.Sprintf(", %d repeats", k.repeats)
	}
	if k.split > 0 {
		s += fmt.Sprintf(", %d keys in more than one partition", k.split)
	}
	if k.example != "" {
		s += " (first: " + k.example + ")"
	}
	return s
}

// checkOrder checks that in each partition the ids of every key appear in
// increasing order (the order the backlog was produced in: the ids of a
// key were written in increasing order, and a key lives in one
// partition). parts are each partition's records in offset order.
func checkOrder(parts map[int32][]keyedRecord) keyOrder {
	var k keyOrder
	home := map[string]int32{}
	ps := make([]int32, 0, len(parts))
	for p := range parts {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	for _, p := range ps {
		last := map[string]int64{}
		seen := map[int64]bool{} // ids are unique across keys
		for _, r := range parts[p] {
			k.records++
			if h, ok := home[r.key]; !ok {
				home[r.key] = p
			} else if h != p {
				// Counted once, at its first stray partition.
				if _, seenHere := last[r.key]; !seenHere {
					k.split++
				}
			}
			if prev, ok := last[r.key]; ok {
				switch {
				case r.id <= prev && seen[r.id]:
					// At least once: a record again (after a rebalance,
					// the records from its partition's committed offset
					// on), not out of order.
					k.repeats++
					continue
				case r.id < prev:
					k.violations++
					if k.example == "" {
						k.example = fmt.Sprintf("key %q: id %d after %d in partition %d", r.key, r.id, prev, p)
					}
				}
			}
			seen[r.id] = true
			last[r.key] = r.id
		}
	}
	k.keys = len(home)
	return k
}

// checkKeyOrder reads the output topic out and checks the order of each
// key's records in it (checkOrder).
func (e *env) checkKeyOrder(ctx context.Context, out string) (keyOrder, error) {
	parts, _, err := readTopic(ctx, e, out, func(m *sarama.ConsumerMessage) (keyedRecord, bool) {
		id, _, ok := parsePayload(m.Value)
		return keyedRecord{key: string(m.Key), id: id}, ok
	})
	if err != nil {
		return keyOrder{}, fmt.Errorf("per-key order: %w", err)
	}
	return checkOrder(parts), nil
}
