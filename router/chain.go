package router

import (
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
)

// layer is one middleware of a stage's chain, named for tests and logs.
type layer struct {
	name string
	mw   message.HandlerMiddleware
}

// layers is a stage's middleware chain, outermost first.
type layers []layer

func (ls layers) middleware() []message.HandlerMiddleware {
	mw := make([]message.HandlerMiddleware, len(ls))
	for i, l := range ls {
		mw[i] = l.mw
	}
	return mw
}

func (ls layers) names() []string {
	n := make([]string, len(ls))
	for i, l := range ls {
		n[i] = l.name
	}
	return n
}

// chain builds a stage's middleware, outermost first, in the one order
// DESIGN.md §2 gives (and README repeats):
//
//	settle → (recoverer) → status → results → quarantine → retry → dedupe → handler
//
// and inside the handler: concurrency slot → timeout → recover → filter,
// then publish.
//
//   - settle is outermost: it sees each record's final outcome and settles
//     its delivery (or leaves it to the handler's ack callback).
//   - Watermill's Recoverer right inside it turns a panic in millrace's
//     own middleware into an error, so the record is settled, not lost;
//     a filter's panic is caught next to the filter (recover.go).
//   - status (only with an Observer) sits outside quarantine, so it sees
//     every outcome, quarantines included. The stage's metrics are counted
//     where each outcome is decided (quarantined in quarantine, retries in
//     retry, skips in dedupe, the rest around the filter call and the
//     publish): a layer of its own, computing an Event per record, cost
//     the no-op stage 11% of its throughput.
//   - results (only on a pipeline with `results:`), in the same slot,
//     writes the job event of a record quarantined or skipped, after its
//     quarantine copy is acked (docs/jobs.md); the handler writes the
//     event of a record its filter processed, with its outputs.
//   - quarantine wraps retry: poison must wrap retry, or the first failure
//     would quarantine.
//   - dedupe is innermost, around the handler, because it acts on the
//     published outcome: the handler of a deduplicating stage returns only
//     after its outputs are acked.
func chain(s *stage) layers {
	ls := layers{
		{"settle", settleMiddleware(settleConfig{records: s.recs, log: s.log, bigStack: s.bigStack()})},
		{"recoverer", middleware.Recoverer},
	}
	if s.observe != nil {
		ls = append(ls, layer{"status", statusMiddleware(statusConfig{pipeline: s.plan.Pipeline, stage: s.plan.Name,
			records: s.recs, observe: s.observe, now: s.recs.now})})
	}
	if s.results != nil {
		ls = append(ls, layer{"results", resultsMiddleware(s.results)})
	}
	ls = append(ls,
		layer{"quarantine", quarantineMiddleware(quarantineConfig{topic: s.plan.Quarantine, records: s.recs, pub: s.out,
			parks: s.parks, metrics: s.m, log: s.log})},
		layer{"retry", retryMiddleware(retryConfig{policy: s.plan.Retry, tierTopics: s.plan.RetryTopics, records: s.recs,
			pub: s.out, parks: s.parks, metrics: s.m, log: s.log})},
	)
	if s.dedup != nil {
		ls = append(ls, layer{"dedupe", dedupeMiddleware(dedupeConfig{plan: s.plan.Dedup, store: s.dedup,
			findPublished: s.findPublished, now: s.recs.now, metrics: s.m, log: s.log})})
	}
	return ls
}

// bigStack says whether the stage's record goroutines grow to 8 KiB at
// once (settleConfig.bigStack): with job results (the events), or when its
// filter says it needs more than 4 KiB (filters.Spec.DeepStack).
func (s *stage) bigStack() bool { return s.results != nil || s.plan.Filter.DeepStack }
