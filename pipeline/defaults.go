package pipeline

import (
	"sort"
	"time"
)

// Defaults used when pipelines.yaml does not set a value.
const (
	DefaultPartitions        = 8
	DefaultReplicationFactor = -1 // the broker's default.replication.factor
	DefaultConcurrency       = 8
	DefaultMaxInFlight       = 256
)

func (f *File) applyDefaults() {
	d := &f.Defaults
	if !d.Set("partitions") {
		d.Partitions = DefaultPartitions
	}
	if !d.Set("replication_factor") {
		d.ReplicationFactor = DefaultReplicationFactor
	}
	if !d.Set("concurrency") {
		d.Concurrency = DefaultConcurrency
	}
	if !d.Set("max_in_flight") {
		d.MaxInFlight = DefaultMaxInFlight
	}
	for i := range f.Pipelines {
		pl := &f.Pipelines[i]
		if !pl.Set("partitions") {
			pl.Partitions = d.Partitions
		}
		for j := range pl.Stages {
			st := &pl.Stages[j]
			if !st.Set("concurrency") {
				st.Concurrency = d.Concurrency
			}
			if !st.Set("max_in_flight") {
				st.MaxInFlight = d.MaxInFlight
			}
		}
	}
}

// retryPlan resolves a retry block: its unset fields take the built-in
// defaults.
func (r Retry) retryPlan() RetryPlan {
	rp := RetryPlan{Attempts: r.Attempts, Tiers: r.Tiers, Backoff: r.Backoff.backoffPlan()}
	if !r.Set("attempts") {
		rp.Attempts = DefaultAttempts
		if len(r.Tiers) > 0 {
			rp.Attempts = DefaultAttemptsWithTiers
		}
	}
	return rp
}

func (b Backoff) backoffPlan() BackoffPlan {
	bp := BackoffPlan{Initial: b.Initial, Max: b.Max, Multiplier: b.Multiplier, Jitter: b.Jitter}
	if !b.Set("initial") {
		bp.Initial = DefaultBackoffInitial
	}
	if !b.Set("max") {
		bp.Max = DefaultBackoffMax
	}
	if !b.Set("multiplier") {
		bp.Multiplier = DefaultBackoffMultiplier
	}
	if !b.Set("jitter") {
		bp.Jitter = DefaultBackoffJitter
	}
	return bp
}

// policies resolves the retry, ordering and timeout of a stage: from the
// nearest of the stage, its pipeline and the defaults that sets each, else
// the built-in defaults. A retry block is taken whole.
func (f *File) policies(pl *Pipeline, st *Stage) (RetryPlan, Ordering, time.Duration) {
	type level struct {
		ps       Positions
		retry    Retry
		ordering Ordering
		timeout  time.Duration
	}
	levels := []level{
		{st.Positions, st.Retry, st.Ordering, st.Timeout},
		{pl.Positions, pl.Retry, pl.Ordering, pl.Timeout},
		{f.Defaults.Positions, f.Defaults.Retry, f.Defaults.Ordering, f.Defaults.Timeout},
	}
	retry, ordering, timeout := Retry{}.retryPlan(), OrderByKey, DefaultTimeout
	for i := len(levels) - 1; i >= 0; i-- {
		l := levels[i]
		if l.ps.Set("retry") {
			retry = l.retry.retryPlan()
		}
		if l.ps.Set("ordering") {
			ordering = l.ordering
		}
		if l.ps.Set("timeout") {
			timeout = l.timeout
		}
	}
	return retry, ordering, timeout
}

// dedupPlan resolves a stage's dedup block, or returns nil.
func (d *Dedup) dedupPlan(pipeline, stage string) *DedupPlan {
	if d == nil {
		return nil
	}
	dp := &DedupPlan{Key: d.Key, KeyOf: d.keyOf, Window: d.Window, MaxKeys: d.MaxKeys,
		Changelog: DedupTopic(pipeline, stage)}
	if !d.Set("window") {
		dp.Window = DefaultDedupWindow
	}
	if !d.Set("max_keys") {
		dp.MaxKeys = DefaultDedupMaxKeys
	}
	return dp
}

// inputs returns a pipeline's input topics with their weights, heaviest
// first. The input is an entry of weight 1 ahead of the list unless the
// list names it; among equal weights the order is kept.
func (pl *Pipeline) inputs() []WeightedTopic {
	var out []WeightedTopic
	listed := false
	for _, pt := range pl.Priority {
		wt := WeightedTopic{Name: pt.Name, Topic: pt.Topic, Weight: pt.Weight}
		if !pt.Set("name") {
			wt.Name = pt.Topic
		}
		if !pt.Set("weight") {
			wt.Weight = 1
		}
		listed = listed || pt.Topic == pl.Input
		out = append(out, wt)
	}
	if !listed {
		out = append([]WeightedTopic{{Name: pl.Input, Topic: pl.Input, Weight: 1}}, out...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Weight > out[j].Weight })
	return out
}
