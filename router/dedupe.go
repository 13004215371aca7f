package router

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/transport"
)

// maxDedupKey bounds the length of a dedup key, in bytes: a key is written
// to the changelog as a record key, and an idempotency key is short.
const maxDedupKey = 16 << 10

// dedupeConfig configures dedupeMiddleware.
type dedupeConfig struct {
	plan  *pipeline.DedupPlan
	store dedupper
	// findPublished looks for the outputs of records published since a
	// time and records the keys of those whose outputs are all there
	// (stage.findPublished).
	findPublished func(ctx context.Context, since time.Time) error
	now           func() time.Time
	metrics       *stageMetrics
	log           *slog.Logger
}

// dedupeMiddleware skips a record whose idempotency key was processed
// within the window, and records the key once the record's outputs are
// acknowledged (DESIGN.md §4: never before — a failed attempt leaves the
// key unrecorded, so its redelivery runs). It is the innermost middleware:
// the handler inside it publishes the outputs and returns after their acks.
//
// A record whose outputs may be in the output topic although it was not
// recorded — publishing them failed (the broker may have written them
// anyway), or they were acked and recording the key failed — is not run
// again straight away: the output topic is searched for its outputs first,
// and a key all of whose outputs are there is recorded, so the record is
// skipped.
func dedupeMiddleware(cfg dedupeConfig) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			key, ok, err := cfg.plan.KeyOf(input(msg))
			switch {
			case err != nil:
				return nil, filters.Permanent(fmt.Errorf("dedup key %s: %w", cfg.plan.Key, err))
			case !ok:
				return h(msg)
			case len(key) > maxDedupKey:
				return nil, filters.Permanent(fmt.Errorf("dedup key %s is %d bytes long; at most %d", cfg.plan.Key, len(key), maxDedupKey))
			}
			p := partitionOf(msg)
			d, _ := transport.DeliveryOf(msg.Context())
			if d != nil && !d.Uncertain().IsZero() {
				if err := cfg.findPublished(msg.Context(), d.Uncertain()); err != nil {
					return nil, &transient{err: err}
				}
				d.SetUncertain(time.Time{})
			}
			st := stateOf(msg)
			if cfg.store.seen(p, key) {
				cfg.log.Debug("duplicate skipped", "dedup_key", key, "origin", recordString(msg))
				if st != nil {
					st.skipped = true
				}
				cfg.metrics.count(func(sm *stageMetrics) prometheus.Counter { return sm.skipped })
				return nil, nil
			}
			if st != nil {
				st.dedupKey, st.keyed = key, true
			}
			out, err := h(msg)
			if err != nil {
				return out, err
			}
			if err := cfg.store.record(p, key); err != nil {
				if d != nil {
					d.SetUncertain(cfg.now())
				}
				return nil, &transient{err: fmt.Errorf("record dedup key: %w", err)}
			}
			return out, nil
		}
	}
}
