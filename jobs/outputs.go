package jobs

import (
	"context"
	"fmt"
	"slices"

	"github.com/IBM/sarama"

	"github.com/millrace/millrace/kafkaops"
)

// InlineOutputs reads the outputs of each finished status of ss from the
// places its Results name and sets its Outputs when their total size (keys
// and values, bytes) is at most limit; a status whose outputs are larger,
// or gone (retention), keeps only their places. Limit 0 inlines nothing.
// It reads only the wanted offsets, with [kafkaops.FetchOffsets]: one
// fetch per stretch of each partition that holds some.
func InlineOutputs(ctx context.Context, client sarama.Client, limit int, ss ...*Status) error {
	if limit == 0 {
		return nil
	}
	wanted := map[Location][]int64{} // topic/partition → offsets
	var want []*Status
	for _, s := range ss {
		if !s.State.Finished() || len(s.Results) == 0 {
			continue
		}
		want = append(want, s)
		for _, l := range s.Results {
			k := Location{Topic: l.Topic, Partition: l.Partition}
			wanted[k] = append(wanted[k], l.Offset)
		}
	}
	read := map[Location]Output{}
	for k, offs := range wanted {
		slices.Sort(offs)
		err := kafkaops.FetchOffsets(ctx, client, k.Topic, k.Partition, slices.Compact(offs), func(m *sarama.ConsumerMessage) {
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
