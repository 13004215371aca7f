package transport_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/testkit"
	"github.com/millrace/millrace/transport"
)

func subscriber(t *testing.T, b testkit.Backend, group string, maxInFlight int) *transport.Subscriber {
	t.Helper()
	s, err := transport.NewSubscriber(transport.SubscriberConfig{
		Brokers: b.Brokers, Group: group, Sarama: testSaramaConfig(), MaxInFlight: maxInFlight,
		DrainTimeout: 20 * time.Second, NackBackoff: time.Millisecond, NackBackoffMax: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func keyed(n, keys int) []testkit.Record {
	recs := make([]testkit.Record, n)
	for i := range recs {
		recs[i] = testkit.Record{Key: fmt.Appendf(nil, "k%d", i%keys), Value: fmt.Appendf(nil, "%d", i)}
	}
	return recs
}

func TestSubscriber_keeps_key_order_while_running_keys_concurrently(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		topic := "order-" + testkit.Unique()
		b.CreateTopic(t, topic, 2)
		const n, keys = 3000, 50
		b.Produce(t, topic, keyed(n, keys))
		msgs, err := subscriber(t, b, "g-"+topic, 64).Subscribe(context.Background(), topic)
		if err != nil {
			t.Fatal(err)
		}
		var (
			mu        sync.Mutex
			last      = map[string]int{}
			busy      = map[string]bool{}
			done      int
			running   atomic.Int32
			maxActive atomic.Int32
			nacked    = map[int]bool{}
		)
		finished := make(chan struct{})
		handle := func(m *message.Message) {
			key, _ := transport.MessageKey(m)
			var seq int
			fmt.Sscan(string(m.Payload), &seq)
			mu.Lock()
			if busy[string(key)] {
				t.Errorf("key %s handed out twice at once", key)
			}
			busy[string(key)] = true
			if prev, ok := last[string(key)]; ok && seq <= prev && !nacked[seq] {
				t.Errorf("key %s: %d after %d", key, seq, prev)
			}
			mu.Unlock()
			active := running.Add(1)
			for old := maxActive.Load(); active > old && !maxActive.CompareAndSwap(old, active); old = maxActive.Load() {
			}
			time.Sleep(time.Duration(seq%3) * time.Millisecond) // work of varying length
			running.Add(-1)
			mu.Lock()
			busy[string(key)] = false
			if seq%97 == 0 && !nacked[seq] { // fail once: must come back before later records of its key
				nacked[seq] = true
				mu.Unlock()
				m.Nack()
				return
			}
			last[string(key)] = seq
			done++
			if done == n {
				close(finished)
			}
			mu.Unlock()
			m.Ack()
		}
		timeout := time.After(2 * time.Minute)
		for {
			select {
			case m := <-msgs:
				go handle(m)
			case <-finished:
				if maxActive.Load() < 2 {
					t.Errorf("at most %d records ran at once; keys should run concurrently", maxActive.Load())
				}
				t.Logf("%d records, up to %d at once", n, maxActive.Load())
				return
			case <-timeout:
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("only %d of %d records were processed", done, n)
			}
		}
	})
}

func TestSubscriber_never_commits_past_an_unacked_record(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		topic := "commit-" + testkit.Unique()
		group := "g-" + topic
		b.CreateTopic(t, topic, 1)
		const n, held = 100, 10
		b.Produce(t, topic, keyed(n, n)) // all keys distinct: nothing waits on order
		sub := subscriber(t, b, group, 256)
		msgs, err := sub.Subscribe(context.Background(), topic)
		if err != nil {
			t.Fatal(err)
		}
		var hold *message.Message
		for i := 0; i < n; i++ {
			m := <-msgs
			if string(m.Payload) == fmt.Sprint(held) {
				hold = m
				continue
			}
			m.Ack()
		}
		committed := func() int64 { return committedOffset(t, b, group, topic) }
		testkit.Eventually(t, 30*time.Second, func() bool { return committed() == held },
			"committed offset did not reach %d (the held record); it is %d", held, committed())
		// 89 later records are acked; the commit must still wait for record 10.
		// Auto-commit runs every second: give it three chances to be wrong.
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			if c := committed(); c != held {
				t.Fatalf("committed offset %d passed the unacked record %d", c, held)
			}
			time.Sleep(100 * time.Millisecond)
		}
		hold.Ack()
		testkit.Eventually(t, 30*time.Second, func() bool { return committed() == n },
			"after the held record was acked the committed offset is %d, want %d", committed(), n)
	})
}

func committedOffset(t *testing.T, b testkit.Backend, group, topic string) int64 {
	t.Helper()
	resp, err := b.Admin(t).ListConsumerGroupOffsets(group, map[string][]int32{topic: {0}})
	if err != nil {
		t.Fatal(err)
	}
	if blk := resp.GetBlock(topic, 0); blk != nil {
		return blk.Offset
	}
	return -1
}

func TestSubscriber_drains_in_flight_records_on_rebalance(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		topic := "rebalance-" + testkit.Unique()
		group := "g-" + topic
		b.CreateTopic(t, topic, 4)
		const n = 400
		b.Produce(t, topic, keyed(n, n))
		var (
			mu    sync.Mutex
			count = map[string]int{}
		)
		handle := func(msgs <-chan *message.Message, delay time.Duration) {
			for m := range msgs {
				go func(m *message.Message) {
					time.Sleep(delay) // slow work keeps records in flight across the rebalance
					mu.Lock()
					count[string(m.Payload)]++
					mu.Unlock()
					m.Ack()
				}(m)
			}
		}
		first, err := subscriber(t, b, group, 32).Subscribe(context.Background(), topic)
		if err != nil {
			t.Fatal(err)
		}
		go handle(first, 20*time.Millisecond)
		testkit.Eventually(t, 30*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(count) > 20 },
			"first subscriber processed nothing")
		second, err := subscriber(t, b, group, 32).Subscribe(context.Background(), topic)
		if err != nil {
			t.Fatal(err)
		}
		go handle(second, 0)
		testkit.Eventually(t, 60*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(count) == n },
			"records were lost across the rebalance")
		testkit.Eventually(t, 30*time.Second, func() bool { return b.GroupLag(t, group, topic) == 0 },
			"the group did not commit everything")
		mu.Lock()
		defer mu.Unlock()
		dups := 0
		for _, c := range count {
			dups += c - 1
		}
		if dups > 0 {
			t.Errorf("%d records were processed twice: in-flight records were not drained before the partitions moved", dups)
		}
	})
}
