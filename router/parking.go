package router

import (
	"context"
	"fmt"
	"sync"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/millrace/millrace/kafkaops"
)

// parking keeps, per input partition, the keys that have records waiting
// in a stage's retry tiers. While a key is parked, later records of it do
// not run: they follow the parked record into its tier (so they keep their
// order behind it) and run after it there. Other keys are not held up.
//
// A record in retry tier n of partition p is always published to partition
// p of the tier topic, and the range assignor gives one member partition p
// of the input and of every tier, so one process sees all of a partition's
// parked keys. The state is rebuilt from the tier topics when partitions
// are assigned (restore).
type parking struct {
	mu    sync.Mutex
	parts map[int32]map[string]*park
}

// park is one parked key: how many of its records each tier holds. The
// key's records are in order from the highest tier holding any (the
// oldest, led by the record that failed) down to the lowest, then the
// input: a record only moves up, into the next tier holding records of its
// key (behind them), and only the highest tier's records run. A record
// that fails in the last tier waits there in place (blocking its key in
// that tier) rather than going round again, so it never changes places
// with the records behind it.
type park struct {
	n map[int]int // tier → records of the key in it
}

// above is the lowest tier above t holding records of the key (0: none).
func (k *park) above(t int) int {
	u := 0
	for x, n := range k.n {
		if n > 0 && x > t && (u == 0 || x < u) {
			u = x
		}
	}
	return u
}

func (k *park) add(t, d int) {
	if t == 0 {
		return
	}
	if k.n[t] += d; k.n[t] <= 0 {
		delete(k.n, t)
	}
}

func newParking() *parking { return &parking{parts: map[int32]map[string]*park{}} }

func (pk *parking) get(p int32, key string) *park {
	keys := pk.parts[p]
	if keys == nil {
		keys = map[string]*park{}
		pk.parts[p] = keys
	}
	k := keys[key]
	if k == nil {
		k = &park{n: map[int]int{}}
		keys[key] = k
	}
	return k
}

// follow reports whether a record of key read from tier t (0: the input)
// must not run yet because older records of its key wait in a tier above;
// it goes behind them, into tier to, and is counted there from now on.
func (pk *parking) follow(p int32, key string, t int) (to int, ok bool) {
	pk.mu.Lock()
	defer pk.mu.Unlock()
	k := pk.parts[p][key]
	if k == nil {
		return 0, false
	}
	if to = k.above(t); to == 0 {
		return 0, false
	}
	k.add(to, 1)
	k.add(t, -1)
	return to, true
}

// unfollow undoes follow when moving the record failed.
func (pk *parking) unfollow(p int32, key string, t, to int) {
	pk.moved(p, key, to, t)
}

// moved counts a record of key moved from tier from (0: the input) to tier
// to after it failed: the key is parked.
func (pk *parking) moved(p int32, key string, from, to int) {
	pk.mu.Lock()
	defer pk.mu.Unlock()
	k := pk.get(p, key)
	k.add(to, 1)
	k.add(from, -1)
	pk.tidy(p, key, k)
}

// done counts a record of key in tier t (>0) finished (processed or
// quarantined); the key is free once none of its records is in a tier.
func (pk *parking) done(p int32, key string, t int) {
	if t == 0 {
		return
	}
	pk.mu.Lock()
	defer pk.mu.Unlock()
	if k := pk.parts[p][key]; k != nil {
		k.add(t, -1)
		pk.tidy(p, key, k)
	}
}

func (pk *parking) tidy(p int32, key string, k *park) {
	if len(k.n) == 0 {
		delete(pk.parts[p], key)
	}
}

// parked returns how many keys of partition p are parked.
func (pk *parking) parked(p int32) int {
	pk.mu.Lock()
	defer pk.mu.Unlock()
	return len(pk.parts[p])
}

// unpark counts msg finished (processed or quarantined) if it was read
// from a retry tier; pk may be nil (a stage that parks nothing).
func (pk *parking) unpark(msg *message.Message, r *records) {
	if pk == nil {
		return
	}
	if key, ok := keyOf(msg); ok {
		pk.done(partitionOf(msg), string(key), r.tierOf(msg))
	}
}

// release forgets partitions.
func (pk *parking) release(ps []int32) {
	pk.mu.Lock()
	defer pk.mu.Unlock()
	for _, p := range ps {
		delete(pk.parts, p)
	}
}

// restore rebuilds the parked keys of partitions ps from the stage's tier
// topics: every keyed record between the group's committed offset and the
// end of partition p of tier n parks its key at tier n at least.
func (pk *parking) restore(ctx context.Context, client sarama.Client, group string, tiers []string, ps []int32) error {
	if len(tiers) == 0 || len(ps) == 0 {
		return nil
	}
	pk.release(ps)
	om, err := sarama.NewOffsetManagerFromClient(group, client)
	if err != nil {
		return fmt.Errorf("restore parked keys: %w", err)
	}
	defer om.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fmt.Errorf("restore parked keys: %w", err)
	}
	defer consumer.Close()
	for i, topic := range tiers {
		for _, p := range ps {
			err := pk.restorePartition(ctx, client, om, consumer, topic, p, i+1)
			if err != nil {
				return fmt.Errorf("restore parked keys from %s/%d: %w", topic, p, err)
			}
		}
	}
	return nil
}

func (pk *parking) restorePartition(ctx context.Context, client sarama.Client, om sarama.OffsetManager,
	consumer sarama.Consumer, topic string, p int32, tier int) error {
	end, err := kafkaops.GetOffset(ctx, client, topic, p, sarama.OffsetNewest)
	if err != nil {
		return err
	}
	pom, err := om.ManagePartition(topic, p)
	if err != nil {
		return err
	}
	from, _ := pom.NextOffset()
	pom.AsyncClose()
	if from < 0 {
		if from, err = kafkaops.GetOffset(ctx, client, topic, p, sarama.OffsetOldest); err != nil {
			return err
		}
	}
	return kafkaops.ReadEach(ctx, consumer, topic, p, from, end, func(m *sarama.ConsumerMessage) {
		if m.Key != nil {
			pk.moved(p, string(m.Key), 0, tier)
		}
	})
}
