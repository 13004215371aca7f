package router_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/broker"
	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/router"
	"github.com/millrace/millrace/testkit"
	"github.com/millrace/millrace/transport"
)

// dedupEnv is a stage's changelog topic on a backend and a publisher to it.
type dedupEnv struct {
	b          testkit.Backend
	plan       pipeline.DedupPlan
	pub        *transport.Publisher
	partitions int
}

func newDedupEnv(t *testing.T, b testkit.Backend, partitions int, window time.Duration, maxKeys int, config map[string]string) dedupEnv {
	t.Helper()
	changelog := "dedup-" + testkit.Unique()
	cfg := map[string]string{"cleanup.policy": "compact"}
	for k, v := range config {
		cfg[k] = v
	}
	topics := []pipeline.Topic{{Name: changelog, Partitions: partitions, Config: cfg}}
	if err := kafkaops.EnsureTopics(b.Client(t), topics, -1, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	pub, err := transport.NewPublisher(b.Brokers, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	return dedupEnv{b: b, partitions: partitions, pub: pub, plan: pipeline.DedupPlan{
		Key: "header:id", Window: window, MaxKeys: maxKeys, Changelog: changelog,
	}}
}

// store opens a store as a new process would: its own client.
func (e dedupEnv) store(t *testing.T) *router.DedupStore {
	t.Helper()
	return router.NewDedupStore(e.plan, e.b.Client(t), e.pub, testLogger(t))
}

// restored is a store holding partitions.
func (e dedupEnv) restored(t *testing.T, partitions ...int32) *router.DedupStore {
	t.Helper()
	d := e.store(t)
	restore(t, d, partitions...)
	return d
}

func restore(t *testing.T, d *router.DedupStore, partitions ...int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := d.Restore(ctx, partitions); err != nil {
		t.Fatal(err)
	}
}

func record(t *testing.T, d *router.DedupStore, partition int32, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if err := d.Record(partition, k); err != nil {
			t.Fatal(err)
		}
	}
}

func expectSeen(t *testing.T, d *router.DedupStore, partition int32, want bool, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if got := d.Seen(partition, k); got != want {
			t.Errorf("seen(%d, %q) = %v, want %v", partition, k, got, want)
		}
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// readPartition reads a partition up to its high-water mark.
func readPartition(t *testing.T, c sarama.Client, topic string, partition int32) []*sarama.ConsumerMessage {
	t.Helper()
	hwm, err := c.GetOffset(topic, partition, sarama.OffsetNewest)
	if err != nil {
		t.Fatal(err)
	}
	oldest, err := c.GetOffset(topic, partition, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	if hwm <= oldest {
		return nil
	}
	consumer, err := sarama.NewConsumerFromClient(c)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic, partition, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var msgs []*sarama.ConsumerMessage
	timeout := time.After(30 * time.Second)
	for {
		select {
		case m := <-pc.Messages():
			msgs = append(msgs, m)
			if m.Offset >= hwm-1 {
				return msgs
			}
		case <-timeout:
			t.Fatalf("read %s/%d: %d records, none at offset %d", topic, partition, len(msgs), hwm-1)
		}
	}
}

func TestDedup_remembers_recorded_keys_per_partition(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		e := newDedupEnv(t, b, 4, time.Hour, 1000, nil)
		d := e.restored(t, 0, 1, 2, 3)
		record(t, d, 1, "order-1", "order-2", "")
		expectSeen(t, d, 1, true, "order-1", "order-2", "")
		expectSeen(t, d, 1, false, "order-3", "order-10", "Order-1")
		expectSeen(t, d, 2, false, "order-1", "order-2", "")
		expectSeen(t, d, 9, false, "order-1") // not held
		record(t, d, 2, "order-1")
		expectSeen(t, d, 2, true, "order-1")
		if d.Len() != 4 {
			t.Errorf("store holds %d keys, want 4", d.Len())
		}

		// The changelog: keyed by the dedup key, in the partition of the
		// input, the time in RFC 3339 UTC as value and as timestamp.
		c := b.Client(t)
		for p, want := range map[int32][]string{0: nil, 1: {"order-1", "order-2", ""}, 2: {"order-1"}, 3: nil} {
			msgs := readPartition(t, c, e.plan.Changelog, p)
			if len(msgs) != len(want) {
				t.Fatalf("changelog partition %d holds %d records, want %d", p, len(msgs), len(want))
			}
			for i, m := range msgs {
				if string(m.Key) != want[i] || m.Key == nil {
					t.Errorf("changelog %d/%d: key %q, want %q", p, m.Offset, m.Key, want[i])
				}
				at, err := time.Parse(time.RFC3339, string(m.Value))
				if err != nil || at.Location() != time.UTC || time.Since(at) > time.Minute || time.Since(at) < 0 {
					t.Errorf("changelog %d/%d: value %q is not a recent RFC 3339 UTC time (%v)", p, m.Offset, m.Value, err)
				}
				if d := m.Timestamp.Sub(at).Abs(); d > time.Second {
					t.Errorf("changelog %d/%d: timestamp %s is %s away from the value %s", p, m.Offset, m.Timestamp, d, m.Value)
				}
			}
		}
	})
}

func TestDedup_restores_keys_after_a_restart(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		e := newDedupEnv(t, b, 3, time.Hour, 1000, nil)
		first := e.restored(t, 0, 1, 2)
		keys := map[int32][]string{}
		for p := int32(0); p < 3; p++ {
			for i := range 20 {
				keys[p] = append(keys[p], fmt.Sprintf("p%d-key%d", p, i))
			}
			record(t, first, p, keys[p]...)
		}
		record(t, first, 0, keys[0][:5]...) // recorded twice

		second := e.restored(t, 0, 1)
		expectSeen(t, second, 0, true, keys[0]...)
		expectSeen(t, second, 1, true, keys[1]...)
		expectSeen(t, second, 2, false, keys[2]...) // not restored
		expectSeen(t, second, 1, false, keys[0]...)
		if second.Len() != 40 {
			t.Errorf("restored store holds %d keys, want 40", second.Len())
		}
		restore(t, second, 0, 1, 2) // 0 and 1 are held: only 2 is read
		expectSeen(t, second, 2, true, keys[2]...)
		if second.Len() != 60 {
			t.Errorf("store holds %d keys, want 60", second.Len())
		}

		second.Release([]int32{1})
		expectSeen(t, second, 1, false, keys[1]...)
		expectSeen(t, second, 0, true, keys[0]...)
		if second.Len() != 40 {
			t.Errorf("after releasing a partition the store holds %d keys, want 40", second.Len())
		}
		record(t, second, 1, "while-released") // written, not remembered
		expectSeen(t, second, 1, false, "while-released")
		restore(t, second, 1)
		expectSeen(t, second, 1, true, keys[1]...)
		expectSeen(t, second, 1, true, "while-released")
	})
}

func TestDedup_skips_expired_keys_on_restore(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		const window = 3 * time.Second // long enough to record and restore before "new" expires
		e := newDedupEnv(t, b, 2, window, 1000, nil)
		d := e.restored(t, 0, 1)
		record(t, d, 0, "old-1", "old-2")
		time.Sleep(window + 100*time.Millisecond)
		expectSeen(t, d, 0, false, "old-1", "old-2") // expired in memory
		record(t, d, 0, "new")
		record(t, d, 1, "new-1")
		expectSeen(t, d, 0, true, "new")
		if d.Len() != 2 {
			t.Errorf("store holds %d keys, want 2 (expired ones dropped)", d.Len())
		}

		restarted := e.restored(t, 0, 1)
		expectSeen(t, restarted, 0, false, "old-1", "old-2")
		expectSeen(t, restarted, 0, true, "new")
		expectSeen(t, restarted, 1, true, "new-1")
		if restarted.Len() != 2 {
			t.Errorf("restored store holds %d keys, want 2", restarted.Len())
		}

		// The window configured now applies to the keys restored.
		e.plan.Window = time.Hour
		longer := e.restored(t, 0)
		expectSeen(t, longer, 0, true, "old-1", "old-2", "new")
	})
}

func TestDedup_max_keys_bound_memory(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		const maxKeys, n = 100, 1000
		e := newDedupEnv(t, b, 2, time.Hour, maxKeys, nil)
		d := e.restored(t, 0, 1)
		key := func(i int) string { return fmt.Sprintf("key-%04d", i) }
		for i := range n {
			record(t, d, int32(i%2), key(i))
			if d.Len() > maxKeys {
				t.Fatalf("after %d keys the store holds %d, more than MaxKeys=%d", i+1, d.Len(), maxKeys)
			}
		}
		if d.Len() != maxKeys {
			t.Errorf("store holds %d keys, want %d", d.Len(), maxKeys)
		}
		if got := d.Evictions(); got != n-maxKeys {
			t.Errorf("%d keys evicted, want %d", got, n-maxKeys)
		}
		for i := n - maxKeys/2; i < n; i++ {
			expectSeen(t, d, int32(i%2), true, key(i))
		}
		for i := range 10 {
			expectSeen(t, d, int32(i%2), false, key(i))
		}

		// A restore is bounded too, and keeps the newest.
		restarted := e.restored(t, 0, 1)
		if restarted.Len() > maxKeys {
			t.Errorf("restored store holds %d keys, more than MaxKeys=%d", restarted.Len(), maxKeys)
		}
		for i := n - maxKeys/2; i < n; i++ {
			expectSeen(t, restarted, int32(i%2), true, key(i))
		}
	})
}

func TestDedup_concurrent_record_and_seen(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		const writers, perWriter, partitions = 8, 50, 4
		e := newDedupEnv(t, b, partitions, time.Hour, 10_000, nil)
		d := e.restored(t, 0, 1, 2, 3)
		key := func(w, i int) string { return fmt.Sprintf("w%d-%d", w, i) }
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := range writers {
			wg.Go(func() {
				for i := range perWriter {
					if err := d.Record(int32(w%partitions), key(w, i)); err != nil {
						t.Error(err)
						return
					}
					if !d.Seen(int32(w%partitions), key(w, i)) {
						t.Errorf("key %s not seen right after it was recorded", key(w, i))
					}
				}
			})
		}
		var readers sync.WaitGroup
		for r := range 4 {
			readers.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					d.Seen(int32(r), key(i%writers, i%perWriter))
					d.Seen(int32(r), "never")
					if i%100 == 0 {
						time.Sleep(time.Millisecond) // leave the CPU to the writers and the broker
						d.Release([]int32{7})        // a partition nobody uses
						if err := d.Restore(context.Background(), []int32{0, 1}); err != nil {
							t.Error(err)
						}
					}
				}
			})
		}
		wg.Wait()
		close(stop)
		readers.Wait()
		for w := range writers {
			for i := range perWriter {
				expectSeen(t, d, int32(w%partitions), true, key(w, i))
			}
		}
		if want := writers * perWriter; d.Len() != want {
			t.Errorf("store holds %d keys, want %d", d.Len(), want)
		}
	})
}

// TestDedup_restores_a_compacted_changelog reads a changelog whose offsets
// have gaps, as compaction leaves them.
func TestDedup_restores_a_compacted_changelog(t *testing.T) {
	run := func(t *testing.T, b testkit.Backend, compact func(e dedupEnv, produced int)) {
		// Real Kafka compacts only closed segments: roll one every 100ms.
		e := newDedupEnv(t, b, 1, time.Hour, 1000, map[string]string{
			"segment.ms": "100", "min.cleanable.dirty.ratio": "0.01", "min.compaction.lag.ms": "0",
		})
		d := e.restored(t, 0)
		var keys []string
		produced := 0
		for round := range 3 {
			for i := range 10 {
				k := fmt.Sprintf("key-%d", i)
				if round > 0 && i%2 == 1 {
					continue
				}
				record(t, d, 0, k)
				produced++
				if round == 0 {
					keys = append(keys, k)
				}
			}
		}
		compact(e, produced)
		c := b.Client(t)
		msgs := readPartition(t, c, e.plan.Changelog, 0)
		var offsets []int64
		for _, m := range msgs {
			offsets = append(offsets, m.Offset)
		}
		hwm, _ := c.GetOffset(e.plan.Changelog, 0, sarama.OffsetNewest)
		t.Logf("%d records produced; after compaction %d remain at offsets %v (high-water mark %d)", produced, len(msgs), offsets, hwm)
		if len(msgs) >= produced {
			t.Fatalf("nothing was compacted")
		}
		restarted := e.restored(t, 0)
		expectSeen(t, restarted, 0, true, keys...)
		expectSeen(t, restarted, 0, false, "key-10")
		if restarted.Len() != len(keys) {
			t.Errorf("restored store holds %d keys, want %d", restarted.Len(), len(keys))
		}
	}
	t.Run("embedded", func(t *testing.T) {
		broker, err := broker.Start(broker.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(broker.Close)
		run(t, testkit.Backend{Name: "embedded", Brokers: []string{broker.Addr()}}, func(dedupEnv, int) { broker.Compact() })
	})
	t.Run("kafka", func(t *testing.T) {
		if os.Getenv("MILLRACE_SKIP_KAFKA") == "1" && os.Getenv("CI") != "true" {
			t.Skip("SKIPPING real-Kafka backend: MILLRACE_SKIP_KAFKA=1")
		}
		b := testkit.RealKafka(t)
		run(t, b, func(e dedupEnv, produced int) {
			// The active segment is never compacted: roll it with one
			// more record, then wait for the log cleaner (it looks every
			// log.cleaner.backoff.ms, 15s by default).
			time.Sleep(200 * time.Millisecond)
			if err := e.pub.Publish(e.plan.Changelog, changelogRecord("key-0", 0, time.Now())); err != nil {
				t.Fatal(err)
			}
			c := b.Client(t)
			testkit.Eventually(t, 90*time.Second, func() bool {
				return len(readPartition(t, c, e.plan.Changelog, 0)) < produced
			}, "the log cleaner did not compact the changelog")
		})
	})
}

// raceEnabled reports whether the test binary was built with -race.
var raceEnabled = func() bool {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" {
				return s.Value == "true"
			}
		}
	}
	return false
}()

// changelogRecord is a changelog record as the store writes it.
func changelogRecord(key string, partition int32, at time.Time) *message.Message {
	m := message.NewMessage(watermill.NewUUID(), []byte(at.UTC().Format("2006-01-02T15:04:05.000Z07:00")))
	transport.SetMessageKey(m, []byte(key))
	transport.SetMessagePartition(m, partition)
	return m
}

func TestDedup_restore_speed(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		n := 100_000
		if raceEnabled {
			n = 20_000
		}
		const partitions = 4
		e := newDedupEnv(t, b, partitions, time.Hour, 1_000_000, nil)
		now := time.Now()
		const batch = 5000
		for start := 0; start < n; start += batch {
			msgs := make([]*message.Message, 0, batch)
			for i := start; i < min(start+batch, n); i++ {
				msgs = append(msgs, changelogRecord(fmt.Sprintf("key-%d", i), int32(i%partitions), now))
			}
			if err := e.pub.Publish(e.plan.Changelog, msgs...); err != nil {
				t.Fatal(err)
			}
		}
		d := e.store(t)
		begin := time.Now()
		restore(t, d, 0, 1, 2, 3)
		took := time.Since(begin)
		t.Logf("restored %d keys from %d partitions in %s: %.0f keys/s", d.Len(), partitions, took.Round(time.Millisecond), float64(d.Len())/took.Seconds())
		if d.Len() != n {
			t.Errorf("restored %d keys, want %d", d.Len(), n)
		}
		for i := 0; i < n; i += 997 {
			expectSeen(t, d, int32(i%partitions), true, fmt.Sprintf("key-%d", i))
		}
	})
}

// TestDedup_memory_per_key measures the heap a remembered key takes.
func TestDedup_memory_per_key(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	const n = 1_000_000
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("order-%d", i)
	}
	d := router.NewDedupStore(pipeline.DedupPlan{Window: time.Hour, MaxKeys: n}, nil, nil, nil)
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	now := time.Now()
	for i, k := range keys {
		d.Remember(int32(i%4), k, now)
	}
	after := heap()
	perKey := float64(after-before) / n
	t.Logf("%d keys take %.1f MiB: %.1f bytes per key", n, float64(after-before)/(1<<20), perKey)
	if d.Len() != n || d.Evictions() != 0 {
		t.Errorf("store holds %d keys with %d evictions, want %d and none", d.Len(), d.Evictions(), n)
	}
	if perKey > 100 {
		t.Errorf("%.1f bytes per key; want at most 100", perKey)
	}
	d.Release([]int32{0, 1, 2, 3})
	if freed := heap(); freed > before+1<<20 {
		t.Errorf("after release the heap is %d bytes larger than before", freed-before)
	}
	runtime.KeepAlive(keys)
}

// TestDedup_restore_does_not_wait_for_a_record_that_never_comes: the last
// offset of a changelog written in a transaction is the commit marker, which
// no consumer ever receives.
func TestDedup_restore_does_not_wait_for_a_record_that_never_comes(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		e := newDedupEnv(t, b, 1, time.Hour, 1000, nil)
		cfg := transport.NewProducerConfig("dedup-txn")
		cfg.Producer.Transaction.ID = "dedup-txn-" + testkit.Unique()
		p, err := sarama.NewSyncProducer(b.Brokers, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if err := p.BeginTxn(); err != nil {
			t.Fatal(err)
		}
		at := time.Now().UTC().Format(time.RFC3339)
		for _, k := range []string{"a", "b"} {
			if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: e.plan.Changelog, Partition: 0,
				Key: sarama.StringEncoder(k), Value: sarama.StringEncoder(at)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.CommitTxn(); err != nil {
			t.Fatal(err)
		}
		c := b.Client(t)
		hwm, err := c.GetOffset(e.plan.Changelog, 0, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("2 records and a commit marker: high-water mark %d", hwm)
		d := e.store(t)
		d.SetRestoreIdle(2 * time.Second)
		begin := time.Now()
		restore(t, d, 0)
		t.Logf("restore took %s", time.Since(begin).Round(time.Millisecond))
		expectSeen(t, d, 0, true, "a", "b")
	})
}

// BenchmarkDedup_hot_path is the memory part of seen and record: a key
// looked up, then remembered, in a store at its MaxKeys.
func BenchmarkDedup_hot_path(b *testing.B) {
	const maxKeys = 100_000
	d := router.NewDedupStore(pipeline.DedupPlan{Window: time.Hour, MaxKeys: maxKeys}, nil, nil, nil)
	keys := make([]string, 4*maxKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("order-%d-%036d", i, i) // longer than 32 bytes
	}
	now := time.Now()
	for i := range maxKeys {
		d.Remember(int32(i%4), keys[i], now)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			k := keys[i%len(keys)]
			if !d.Seen(int32(i%4), k) {
				d.Remember(int32(i%4), k, now)
			}
			i++
		}
	})
}
