package jobs

import (
	"context"
	"fmt"

	"github.com/IBM/sarama"

	"github.com/millrace/millrace/kafkaops"
)

// InlineOutputs reads the outputs of each finished status of ss from the
// places its Results name and sets its Outputs when their total size (keys
// and values, bytes) is at most limit; a status whose outputs are larger,
// or gone (retention), keeps only their places. Limit 0 inlines nothing.
// It reads each partition once, from the lowest offset any status names
// to the highest, with [kafkaops.FetchRange].
func InlineOutputs(ctx context.Context, client sarama.Client, limit int, ss ...*Status) error {
	if limit == 0 {
		return nil
	}
	ranges := map[Location][2]int64{} // topic/partition → [lowest, highest] offset
	var want []*Status
	for _, s := range ss {
		if !s.State.Finished() || len(s.Results) == 0 {
			continue
		}
		want = append(want, s)
		for _, l := range s.Results {
			k := Location{Topic: l.Topic, Partition: l.Partition}
			r, ok := ranges[k]
			if !ok {
				r = [2]int64{l.Offset, l.Offset}
			}
			ranges[k] = [2]int64{min(r[0], l.Offset), max(r[1], l.Offset)}
		}
	}
	read := map[Location]Output{}
	for k, r := range ranges {
		err := kafkaops.FetchRange(ctx, client, k.Topic, k.Partition, r[0], r[1]+1, func(m *sarama.ConsumerMessage) {
			l := Location{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset}
			read[l] = NewOutput(l, m.Key, m.Value)
		})
		if err != nil {
			return fmt.Errorf("read the outputs of finished jobs in %s: %w", k, err)
		}
	}
	for _, s := range want {
		var outs []Output
		size := 0
		for _, l := range s.Results {
			o, ok := read[l]
			if !ok {
				outs = nil // gone (retention): places only
				break
			}
			size += o.size()
			outs = append(outs, o)
		}
		if outs != nil && size <= limit {
			s.Outputs = outs
		}
	}
	return nil
}
