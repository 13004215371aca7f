package kafkaops

import (
	"context"
	"errors"
)

// ResetOptions says whose offsets [ResetOffsets] moves where.
type ResetOptions struct {
	Cluster
	// Group is the consumer group; it must have no members.
	Group string
	// Topics are the topics whose every partition moves.
	Topics []string
	Spec   ResetSpec
	// Execute commits the plan; without it nothing changes.
	Execute bool
}

// ResetOffsets plans (see [PlanOffsetReset]) and, with opts.Execute,
// commits a reset of a consumer group's offsets, as Kafka's
// kafka-consumer-groups --reset-offsets [--execute] does. It refuses with
// an error wrapping [ErrGroupActive] while the group has members, dry run
// or not (so that the plan shown is the one that would be applied), and
// checks again right before committing. It returns the plan per partition,
// sorted by topic and partition.
func ResetOffsets(ctx context.Context, opts ResetOptions) ([]OffsetReset, error) {
	if opts.Group == "" || len(opts.Topics) == 0 {
		return nil, errors.New("reset offsets: a group and at least one topic are needed")
	}
	client, err := opts.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	if err := RequireInactive(client, opts.Group); err != nil {
		return nil, err
	}
	plan, err := PlanOffsetReset(ctx, client, opts.Group, opts.Topics, opts.Spec)
	if err != nil || !opts.Execute {
		return plan, err
	}
	// A stage may have started meanwhile (the broker would reject the
	// commit too).
	if err := RequireInactive(client, opts.Group); err != nil {
		return nil, err
	}
	if err := ApplyOffsetReset(client, opts.Group, plan); err != nil {
		return nil, err
	}
	return plan, nil
}
