package kafkaops_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/IBM/sarama"

	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/testkit"
)

// FetchRange hands out exactly the records of [from, end), with their
// keys, values and headers, across produce batches; a range past the
// high-water mark stops there; an empty one reads nothing. FetchOffsets
// hands out exactly the wanted offsets that exist.
func TestFetchRange_and_FetchOffsets_read_exactly_what_is_asked(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		topic := "fetch-" + testkit.Unique()
		b.CreateTopic(t, topic, 1)
		var recs []testkit.Record
		for i := range 50 {
			recs = append(recs, testkit.Record{Key: []byte(fmt.Sprint("k", i)), Value: []byte(fmt.Sprint("v", i)),
				Headers: map[string]string{"h": fmt.Sprint(i)}})
		}
		b.Produce(t, topic, recs[:20]) // two produce batches
		b.Produce(t, topic, recs[20:])
		client := b.Client(t)
		read := func(from, end int64) []string {
			t.Helper()
			var got []string
			err := kafkaops.FetchRange(context.Background(), client, topic, 0, from, end, func(m *sarama.ConsumerMessage) {
				h := ""
				if len(m.Headers) == 1 {
					h = string(m.Headers[0].Value)
				}
				got = append(got, fmt.Sprintf("%d:%s=%s:%s", m.Offset, m.Key, m.Value, h))
			})
			if err != nil {
				t.Fatalf("FetchRange(%d, %d): %v", from, end, err)
			}
			return got
		}
		want := func(from, end int) []string {
			var w []string
			for i := from; i < end; i++ {
				w = append(w, fmt.Sprintf("%d:k%d=v%d:%d", i, i, i, i))
			}
			return w
		}
		for _, r := range [][2]int{{0, 50}, {7, 8}, {15, 33}, {49, 50}} {
			if got := read(int64(r[0]), int64(r[1])); !slices.Equal(got, want(r[0], r[1])) {
				t.Errorf("[%d, %d): %q, want %q", r[0], r[1], got, want(r[0], r[1]))
			}
		}
		if got := read(45, 1000); !slices.Equal(got, want(45, 50)) {
			t.Errorf("[45, 1000): %q, want up to the end", got)
		}
		if got := read(60, 70); len(got) != 0 {
			t.Errorf("past the end: %q, want nothing", got)
		}
		if got := read(10, 10); len(got) != 0 {
			t.Errorf("an empty range: %q", got)
		}
		for _, offs := range [][]int64{{3}, {0, 19, 20, 49}, {5, 6, 7, 30, 31, 60, 70}} {
			var got, want []string
			err := kafkaops.FetchOffsets(context.Background(), client, topic, 0, offs, func(m *sarama.ConsumerMessage) {
				got = append(got, fmt.Sprintf("%d:%s", m.Offset, m.Value))
			})
			for _, o := range offs {
				if o < 50 {
					want = append(want, fmt.Sprintf("%d:v%d", o, o))
				}
			}
			if err != nil || !slices.Equal(got, want) {
				t.Errorf("FetchOffsets %v: %q, %v; want %q", offs, got, err, want)
			}
		}
	})
}
