package kafkaops_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/testkit"
)

// TestCopyRange_copies_exactly_the_time_range: 2 partitions of 10 records
// one second apart; [record 3, record 7) copies 4 per partition with
// their keys and headers, --dry-run counts the same and copies nothing.
func TestCopyRange_copies_exactly_the_time_range(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		from, to := "copy-"+testkit.Unique(), "copy-"+testkit.Unique()
		b.CreateTopic(t, from, 2)
		b.CreateTopic(t, to, 2)
		base := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
		produceAt(t, b, from, 2, 10, base)
		opts := kafkaops.CopyOptions{Cluster: kafkaops.Cluster{Brokers: b.Brokers, ConnectTimeout: 10 * time.Second},
			From: from, To: to, Since: base.Add(3 * time.Second), Until: base.Add(7 * time.Second), DryRun: true}
		var last kafkaops.Progress
		opts.Progress = func(p kafkaops.Progress) { last = p }
		ctx := context.Background()
		res, err := kafkaops.CopyRange(ctx, opts)
		if err != nil || res.Copied != 8 || fmt.Sprint(res.PerPartition) != "map[0:4 1:4]" || res.SkippedAfterUntil != 6 {
			t.Fatalf("dry run: %+v, %v; want 8 copied (4 per partition), 6 after until", res, err)
		}
		if last != (kafkaops.Progress{Read: 14, Total: 14, Sent: 8}) {
			t.Errorf("last progress %+v, want 14 of 14 read, 8 sent", last)
		}
		if n := len(b.ReadAll(t, to)); n != 0 {
			t.Fatalf("dry run copied %d records", n)
		}
		opts.DryRun, opts.Progress = false, nil
		if res, err := kafkaops.CopyRange(ctx, opts); err != nil || res.Copied != 8 {
			t.Fatalf("copy: %+v, %v; want 8 copied", res, err)
		}
		got := b.ReadAll(t, to)
		seen := map[string]bool{}
		for _, r := range got {
			seen[string(r.Value)] = true
		}
		for p := 0; p < 2; p++ {
			for i := 3; i < 7; i++ {
				if !seen[fmt.Sprintf("p%d-%d", p, i)] {
					t.Errorf("p%d-%d was not copied", p, i)
				}
			}
		}
		if len(got) != 8 {
			t.Fatalf("%s holds %d records, want 8", to, len(got))
		}
	})
}

func TestCopyRange_keeps_keys_and_headers_and_refuses_bad_ranges(t *testing.T) {
	b := testkit.Embedded(t)
	from, to := "copy-"+testkit.Unique(), "copy-"+testkit.Unique()
	b.CreateTopic(t, from, 1)
	b.CreateTopic(t, to, 3)
	b.Produce(t, from, []testkit.Record{{Key: []byte("k1"), Value: []byte("v"), HeaderList: filters.HeadersOf("h", "1", "h", "2")}})
	cl := kafkaops.Cluster{Brokers: b.Brokers, ConnectTimeout: 10 * time.Second}
	ctx := context.Background()
	if res, err := kafkaops.CopyRange(ctx, kafkaops.CopyOptions{Cluster: cl, From: from, To: to, Rate: 100}); err != nil || res.Copied != 1 {
		t.Fatalf("copy: %+v, %v", res, err)
	}
	got := b.ReadAll(t, to)
	if len(got) != 1 || string(got[0].Key) != "k1" || fmt.Sprint(got[0].HeaderList) != fmt.Sprint(filters.HeadersOf("h", "1", "h", "2")) {
		t.Fatalf("copied %+v, want key k1 and headers h=1, h=2", got)
	}
	missing := "no-such-topic-" + testkit.Unique()
	if _, err := kafkaops.CopyRange(ctx, kafkaops.CopyOptions{Cluster: cl, From: from, To: missing}); err == nil ||
		err.Error() != "the topic to copy into, "+missing+", does not exist" {
		t.Errorf("CopyRange into a missing topic = %v, want it named as the topic to copy into", err)
	}
	for _, opts := range []kafkaops.CopyOptions{
		{Cluster: cl, From: from, To: from},
		{Cluster: cl, From: from, To: to, Since: time.Now(), Until: time.Now().Add(-time.Hour)},
		{Cluster: cl, From: from, To: "no-such-topic-" + testkit.Unique()},
	} {
		if _, err := kafkaops.CopyRange(ctx, opts); !errors.Is(err, kafkaops.ErrNotStarted) {
			t.Errorf("CopyRange %s → %s [%v, %v) = %v, want an error wrapping ErrNotStarted", opts.From, opts.To, opts.Since, opts.Until, err)
		}
	}
}
