package kafkaops

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

// ResetKind is how [PlanOffsetReset] picks the new offset of a partition.
type ResetKind int

// The kinds of reset, as Kafka's kafka-consumer-groups --reset-offsets
// names them.
const (
	// ToEarliest: the log start offset.
	ToEarliest ResetKind = iota + 1
	// ToLatest: the log end offset (nothing left to read).
	ToLatest
	// ToTime: the first offset whose record timestamp is at or after
	// ResetSpec.Time; the log end when there is none.
	ToTime
	// ToOffset: ResetSpec.Offset, clamped to the log bounds.
	ToOffset
	// ShiftBy: the committed offset plus ResetSpec.Shift, clamped to the
	// log bounds. A partition without a committed offset is an error, as
	// in Kafka's tool.
	ShiftBy
)

// ResetSpec says where to move a consumer group's offsets.
type ResetSpec struct {
	Kind   ResetKind
	Time   time.Time
	Offset int64
	Shift  int64
}

// String describes the spec the way Kafka's tool spells its option.
func (s ResetSpec) String() string {
	switch s.Kind {
	case ToEarliest:
		return "to-earliest"
	case ToLatest:
		return "to-latest"
	case ToTime:
		return "to-time " + s.Time.UTC().Format(time.RFC3339Nano)
	case ToOffset:
		return fmt.Sprintf("to-offset %d", s.Offset)
	case ShiftBy:
		return fmt.Sprintf("shift-by %d", s.Shift)
	}
	return "?"
}

// OffsetReset is the plan for one partition.
type OffsetReset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Current is the group's committed offset; without one (Committed
	// false) it is the log start, where a millrace stage starts reading.
	Current   int64 `json:"current"`
	Committed bool  `json:"committed"`
	Target    int64 `json:"target"`
	LogStart  int64 `json:"log_start"`
	LogEnd    int64 `json:"log_end"`
}

// Reprocess is how many records the group reads again after the reset.
func (r OffsetReset) Reprocess() int64 { return max(0, r.Current-r.Target) }

// Skip is how many records the group will not read after the reset.
func (r OffsetReset) Skip() int64 { return max(0, r.Target-r.Current) }

// GroupState returns the state of a consumer group ("Empty", "Stable",
// "Dead" for one that does not exist, ...) and how many members it has.
func GroupState(client sarama.Client, group string) (string, int, error) {
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return "", 0, fmt.Errorf("open cluster admin: %w", err)
	}
	// Closing the admin would close the shared client.
	ds, err := admin.DescribeConsumerGroups([]string{group})
	if err != nil {
		return "", 0, fmt.Errorf("describe consumer group %s: %w", group, err)
	}
	if len(ds) != 1 {
		return "", 0, fmt.Errorf("describe consumer group %s: %d answers", group, len(ds))
	}
	if ds[0].Err == sarama.ErrGroupIDNotFound {
		return "Dead", 0, nil
	}
	if ds[0].Err != sarama.ErrNoError {
		return "", 0, fmt.Errorf("describe consumer group %s: %w", group, ds[0].Err)
	}
	return ds[0].State, len(ds[0].Members), nil
}

// ErrGroupActive is returned while a consumer group has members: its
// offsets cannot be reset (Kafka rejects the commit) until they stop.
var ErrGroupActive = errors.New("consumer group has active members")

// RequireInactive returns an error wrapping [ErrGroupActive] unless the
// group has no members.
func RequireInactive(client sarama.Client, group string) error {
	state, n, err := GroupState(client, group)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%w: %s is %s with %d member(s)", ErrGroupActive, group, state, n)
	}
	return nil
}

// PlanOffsetReset computes where the offsets of group on every partition
// of topics would move under spec, with the semantics of Kafka's
// kafka-consumer-groups --reset-offsets. It changes nothing. The result is
// sorted by topic and partition. Offsets are read with [GetOffset].
func PlanOffsetReset(ctx context.Context, client sarama.Client, group string, topics []string, spec ResetSpec) ([]OffsetReset, error) {
	if err := client.RefreshMetadata(topics...); err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", strings.Join(topics, ", "), err)
	}
	parts, committed, err := committedOn(client, group, topics)
	if err != nil {
		return nil, err
	}
	var plan []OffsetReset
	for _, t := range topics {
		for _, p := range parts[t] {
			r := OffsetReset{Topic: t, Partition: p}
			if r.LogStart, err = GetOffset(ctx, client, t, p, sarama.OffsetOldest); err != nil {
				return nil, fmt.Errorf("log start of %s/%d: %w", t, p, err)
			}
			if r.LogEnd, err = GetOffset(ctx, client, t, p, sarama.OffsetNewest); err != nil {
				return nil, fmt.Errorf("log end of %s/%d: %w", t, p, err)
			}
			r.Current = r.LogStart
			if b := committed.GetBlock(t, p); b != nil {
				if b.Err != sarama.ErrNoError && b.Err != sarama.ErrGroupIDNotFound {
					return nil, fmt.Errorf("committed offset of %s on %s/%d: %w", group, t, p, b.Err)
				}
				if b.Offset >= 0 {
					r.Current, r.Committed = b.Offset, true
				}
			}
			if r.Target, err = target(ctx, client, r, spec); err != nil {
				return nil, err
			}
			plan = append(plan, r)
		}
	}
	sort.Slice(plan, func(i, j int) bool {
		if plan[i].Topic != plan[j].Topic {
			return plan[i].Topic < plan[j].Topic
		}
		return plan[i].Partition < plan[j].Partition
	})
	return plan, nil
}

func target(ctx context.Context, client sarama.Client, r OffsetReset, spec ResetSpec) (int64, error) {
	clamp := func(o int64) int64 { return min(max(o, r.LogStart), r.LogEnd) }
	switch spec.Kind {
	case ToEarliest:
		return r.LogStart, nil
	case ToLatest:
		return r.LogEnd, nil
	case ToOffset:
		return clamp(spec.Offset), nil
	case ShiftBy:
		if !r.Committed {
			return 0, fmt.Errorf("cannot shift %s/%d: the group has no committed offset there (as Kafka's tool, "+
				"shift-by needs one; use --to-earliest, --to-time or --to-offset)", r.Topic, r.Partition)
		}
		return clamp(r.Current + spec.Shift), nil
	case ToTime:
		o, err := GetOffset(ctx, client, r.Topic, r.Partition, spec.Time.UnixMilli())
		if err != nil {
			return 0, fmt.Errorf("offset by time of %s/%d: %w", r.Topic, r.Partition, err)
		}
		if o < 0 {
			return r.LogEnd, nil // no record at or after the time
		}
		return clamp(o), nil
	}
	return 0, fmt.Errorf("unknown reset kind %d", spec.Kind)
}

// ApplyOffsetReset commits each partition's Target for group. The group
// must have no members (see [RequireInactive]); the broker rejects the
// commit otherwise.
func ApplyOffsetReset(client sarama.Client, group string, plan []OffsetReset) error {
	if len(plan) == 0 {
		return nil
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return fmt.Errorf("open cluster admin: %w", err)
	}
	offsets := map[string]map[int32]sarama.OffsetAndMetadata{}
	for _, r := range plan {
		if offsets[r.Topic] == nil {
			offsets[r.Topic] = map[int32]sarama.OffsetAndMetadata{}
		}
		offsets[r.Topic][r.Partition] = sarama.OffsetAndMetadata{Offset: r.Target, LeaderEpoch: -1}
	}
	resp, err := admin.AlterConsumerGroupOffsets(group, offsets, nil)
	if err != nil {
		return fmt.Errorf("commit offsets of %s: %w", group, err)
	}
	var errs []error
	for t, ps := range resp.Errors {
		for p, kerr := range ps {
			if kerr != sarama.ErrNoError {
				errs = append(errs, fmt.Errorf("commit offset of %s on %s/%d: %w", group, t, p, kerr))
			}
		}
	}
	return errors.Join(errs...)
}

// CommitOffsets commits offsets (topic → partition → next offset to read)
// for group, outside any group membership; it is how a tool keeps its
// progress in Kafka. The group must have no members.
func CommitOffsets(client sarama.Client, group string, offsets map[string]map[int32]int64) error {
	var plan []OffsetReset
	for t, ps := range offsets {
		for p, o := range ps {
			plan = append(plan, OffsetReset{Topic: t, Partition: p, Target: o})
		}
	}
	return ApplyOffsetReset(client, group, plan)
}

// CommittedOffsets returns group's committed offsets on every partition of
// topic (-1 where it has none).
func CommittedOffsets(client sarama.Client, group, topic string) (map[int32]int64, error) {
	parts, resp, err := committedOn(client, group, []string{topic})
	if err != nil {
		return nil, err
	}
	ps := parts[topic]
	out := make(map[int32]int64, len(ps))
	for _, p := range ps {
		out[p] = -1
		if b := resp.GetBlock(topic, p); b != nil && b.Err == sarama.ErrNoError && b.Offset >= 0 {
			out[p] = b.Offset
		}
	}
	return out, nil
}

// CommittedMetadata returns group's committed offset on topic/partition and
// the metadata committed with it (OffsetCommit's metadata string); ok is
// false where the group committed nothing there.
func CommittedMetadata(client sarama.Client, group, topic string, partition int32) (offset int64, metadata string, ok bool, err error) {
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return 0, "", false, fmt.Errorf("open cluster admin: %w", err)
	}
	// Closing the admin would close the shared client.
	resp, err := listCommitted(admin, group, map[string][]int32{topic: {partition}})
	if err != nil {
		return 0, "", false, err
	}
	if b := resp.GetBlock(topic, partition); b != nil && b.Err == sarama.ErrNoError && b.Offset >= 0 {
		return b.Offset, b.Metadata, true, nil
	}
	return 0, "", false, nil
}

// committedOn lists the partitions of topics and group's committed offsets
// on them (an empty response for a group that never committed). The admin
// it opens is not closed: that would close client.
func committedOn(client sarama.Client, group string, topics []string) (map[string][]int32, *sarama.OffsetFetchResponse, error) {
	parts := map[string][]int32{}
	for _, t := range topics {
		ps, err := client.Partitions(t)
		if err != nil {
			return nil, nil, topicError(t, err)
		}
		parts[t] = ps
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return nil, nil, fmt.Errorf("open cluster admin: %w", err)
	}
	resp, err := listCommitted(admin, group, parts)
	return parts, resp, err
}

// listCommitted fetches group's committed offsets; a group that does not
// exist (the embedded broker says so, Kafka answers with no offsets) has
// none.
func listCommitted(admin sarama.ClusterAdmin, group string, parts map[string][]int32) (*sarama.OffsetFetchResponse, error) {
	resp, err := admin.ListConsumerGroupOffsets(group, parts)
	if errors.Is(err, sarama.ErrGroupIDNotFound) || (err == nil && resp.Err == sarama.ErrGroupIDNotFound) {
		return &sarama.OffsetFetchResponse{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("offsets of group %s: %w", group, err)
	}
	if resp.Err != sarama.ErrNoError {
		return nil, fmt.Errorf("offsets of group %s: %w", group, resp.Err)
	}
	return resp, nil
}
