package kafkaops

import (
	"context"
	"fmt"

	"github.com/IBM/sarama"
)

// GroupLag returns, for every partition of topics, how many records group
// has not committed yet: the partition's log end minus the group's
// committed offset (Kafka's kafka-consumer-groups --describe LAG). Where
// the group committed nothing, it counts from the log start, where a
// millrace stage starts reading. Offsets are read with GetOffset (so a
// partition created a moment ago is waited for).
func GroupLag(ctx context.Context, client sarama.Client, group string, topics []string) (map[string]map[int32]int64, error) {
	parts, resp, err := committedOn(client, group, topics)
	if err != nil {
		return nil, err
	}
	lag := make(map[string]map[int32]int64, len(parts))
	for t, ps := range parts {
		lag[t] = make(map[int32]int64, len(ps))
		for _, p := range ps {
			end, err := GetOffset(ctx, client, t, p, sarama.OffsetNewest)
			if err != nil {
				return nil, fmt.Errorf("end of %s/%d: %w", t, p, err)
			}
			committed := int64(-1)
			if b := resp.GetBlock(t, p); b != nil {
				if b.Err != sarama.ErrNoError && b.Err != sarama.ErrGroupIDNotFound {
					// Not "no commit": counting the whole log would be a
					// lag spike, and an autoscaler would act on it.
					return nil, fmt.Errorf("committed offset of %s on %s/%d: %w", group, t, p, b.Err)
				}
				committed = b.Offset
			}
			if committed < 0 {
				if committed, err = GetOffset(ctx, client, t, p, sarama.OffsetOldest); err != nil {
					return nil, fmt.Errorf("start of %s/%d: %w", t, p, err)
				}
			}
			lag[t][p] = max(end-committed, 0)
		}
	}
	return lag, nil
}
