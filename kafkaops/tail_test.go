package kafkaops_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/testkit"
)

// tailAll runs Tail with opts on b and returns the payloads it handed out,
// by partition.
func tailAll(t *testing.T, ctx context.Context, b testkit.Backend, opts kafkaops.TailOptions) (map[int32][]string, int, error) {
	t.Helper()
	var mu sync.Mutex
	got := map[int32][]string{}
	n := 0
	opts.Cluster = kafkaops.Cluster{Brokers: b.Brokers, ConnectTimeout: 10 * time.Second}
	opts.Record = func(m *kafkaops.Record) {
		mu.Lock()
		defer mu.Unlock()
		got[m.Partition] = append(got[m.Partition], string(m.Value))
		n++
	}
	err := kafkaops.Tail(ctx, opts)
	return got, n, err
}

func TestTail_reads_every_partition_in_offset_order_up_to_the_ends_or_the_limit(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		topic := "tail-" + testkit.Unique()
		b.CreateTopic(t, topic, 3)
		produceAt(t, b, topic, 3, 20, time.Now().Add(-time.Minute))
		ctx := context.Background()

		got, n, err := tailAll(t, ctx, b, kafkaops.TailOptions{Topic: topic, FromBeginning: true, StopAtEnd: true})
		if err != nil || n != 60 {
			t.Fatalf("Tail --from-beginning --exit: %d records, %v; want 60", n, err)
		}
		for p := int32(0); p < 3; p++ {
			for i, v := range got[p] {
				if want := fmt.Sprintf("p%d-%d", p, i); v != want {
					t.Fatalf("partition %d record %d is %q, want %q (offset order)", p, i, v, want)
				}
			}
		}
		if _, n, err := tailAll(t, ctx, b, kafkaops.TailOptions{Topic: topic, FromBeginning: true, StopAtEnd: true, Limit: 7}); err != nil || n != 7 {
			t.Fatalf("Tail -n 7: %d records, %v; want 7", n, err)
		}
		// From the end and stopping there: nothing to read, no wait.
		start := time.Now()
		if _, n, err := tailAll(t, ctx, b, kafkaops.TailOptions{Topic: topic, StopAtEnd: true}); err != nil || n != 0 {
			t.Fatalf("Tail --exit from the end: %d records, %v; want none", n, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Tail --exit from the end took %s", d)
		}
	})
}

func TestTail_follows_new_records_until_ctx_ends_and_returns_nil(t *testing.T) {
	b := testkit.Embedded(t)
	topic := "follow-" + testkit.Unique()
	b.CreateTopic(t, topic, 2)
	b.Produce(t, topic, []testkit.Record{{Value: []byte("before")}, {Value: []byte("before")}}) // not shown
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var got []string
	done := make(chan error, 1)
	go func() {
		done <- kafkaops.Tail(ctx, kafkaops.TailOptions{Cluster: kafkaops.Cluster{Brokers: b.Brokers, ConnectTimeout: 10 * time.Second},
			Topic: topic, Record: func(m *kafkaops.Record) {
				mu.Lock()
				got = append(got, string(m.Value))
				mu.Unlock()
			}})
	}()
	// Tail starts at the ends it finds; produce until it has seen some.
	testkit.Eventually(t, 30*time.Second, func() bool {
		b.Produce(t, topic, []testkit.Record{{Value: []byte("after")}})
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= 2
	}, "Tail never showed a record produced after it started")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Tail stopped by its context returned %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Tail did not return after its context ended")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, v := range got {
		if v != "after" {
			t.Fatalf("Tail from the end showed %q", v)
		}
	}
}

func TestTail_of_a_missing_topic_fails(t *testing.T) {
	b := testkit.Embedded(t)
	_, _, err := tailAll(t, context.Background(), b, kafkaops.TailOptions{Topic: "no-such-topic", StopAtEnd: true})
	if err == nil || strings.Count(err.Error(), "no-such-topic") != 1 || !strings.HasPrefix(err.Error(), "topic no-such-topic: ") {
		t.Fatalf("Tail of a missing topic = %v, want an error naming the topic once", err)
	}
}
