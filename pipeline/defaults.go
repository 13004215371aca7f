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

// Defaults of a pipeline's `results:` block (see [ResultsPlan] and
// [CallbackPlan]).
const (
	DefaultResultsKeep           = 24 * time.Hour
	DefaultReplyMaxBytes         = 64 << 10 // 65536
	DefaultCallbackTimeout       = 10 * time.Second
	DefaultCallbackRetryInitial  = time.Second
	DefaultCallbackRetryMax      = time.Minute
	DefaultCallbackRetryDeadline = time.Hour
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

// policyLevel is what one level (the defaults, a pipeline or a stage)
// sets of the policies its stages take from the nearest level; ps are the
// level's positions, which say what it sets.
type policyLevel struct {
	ps                                        Positions
	retry                                     Retry
	ordering                                  Ordering
	timeout, sessionTimeout, rebalanceTimeout time.Duration
}

func (d *Defaults) policyLevel() policyLevel {
	return policyLevel{d.Positions, d.Retry, d.Ordering, d.Timeout, d.SessionTimeout, d.RebalanceTimeout}
}

func (pl *Pipeline) policyLevel() policyLevel {
	return policyLevel{pl.Positions, pl.Retry, pl.Ordering, pl.Timeout, pl.SessionTimeout, pl.RebalanceTimeout}
}

func (st *Stage) policyLevel() policyLevel {
	return policyLevel{st.Positions, st.Retry, st.Ordering, st.Timeout, st.SessionTimeout, st.RebalanceTimeout}
}

// stagePolicies are a stage's policies, resolved.
type stagePolicies struct {
	retry    RetryPlan
	ordering Ordering
	// timeout bounds a filter call; the group timeouts are 0 when no level
	// sets them.
	timeout, sessionTimeout, rebalanceTimeout time.Duration
}

// policies resolves the retry, ordering, timeout and consumer group
// timeouts of a stage: each from the nearest of the stage, its pipeline
// and the defaults that sets it, else the built-in default. A retry block
// is taken whole.
func (f *File) policies(pl *Pipeline, st *Stage) stagePolicies {
	levels := []policyLevel{f.Defaults.policyLevel(), pl.policyLevel(), st.policyLevel()}
	sp := stagePolicies{retry: Retry{}.retryPlan(), ordering: OrderByKey, timeout: DefaultTimeout}
	for _, l := range levels {
		if l.ps.Set("retry") {
			sp.retry = l.retry.retryPlan()
		}
		if l.ps.Set("ordering") {
			sp.ordering = l.ordering
		}
		if l.ps.Set("timeout") {
			sp.timeout = l.timeout
		}
		if l.ps.Set("session_timeout") {
			sp.sessionTimeout = l.sessionTimeout
		}
		if l.ps.Set("rebalance_timeout") {
			sp.rebalanceTimeout = l.rebalanceTimeout
		}
	}
	return sp
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

// resultsPlan resolves a pipeline's results block, or returns nil: its
// unset fields take the defaults.
func (r *Results) resultsPlan(pipeline string) *ResultsPlan {
	if r == nil {
		return nil
	}
	rp := &ResultsPlan{Keep: r.Keep, ReplyTopics: r.ReplyTopics, ReplyMaxBytes: r.ReplyMaxBytes,
		Callback: r.Callback.callbackPlan(), CallbackHosts: r.CallbackHosts,
		EventsTopic: JobsTopic(pipeline), StatusTopic: JobStatusTopic(pipeline), Group: JobsGroup(pipeline)}
	if !r.Set("keep") {
		rp.Keep = DefaultResultsKeep
	}
	if !r.Set("reply_max_bytes") {
		rp.ReplyMaxBytes = DefaultReplyMaxBytes
	}
	return rp
}

// callbackPlan resolves a callback block, or returns nil.
func (c *Callback) callbackPlan() *CallbackPlan {
	if c == nil {
		return nil
	}
	cp := &CallbackPlan{URL: c.URL, Secret: c.Secret, Timeout: c.Timeout}
	cp.RetryInitial, cp.RetryMax, cp.RetryDeadline = c.Retry.bounds()
	if !c.Set("timeout") {
		cp.Timeout = DefaultCallbackTimeout
	}
	return cp
}

// bounds are a callback retry block's initial, max and deadline, the
// defaults where unset.
func (r CallbackRetry) bounds() (initial, max, deadline time.Duration) {
	initial, max, deadline = r.Initial, r.Max, r.Deadline
	if !r.Set("initial") {
		initial = DefaultCallbackRetryInitial
	}
	if !r.Set("max") {
		max = DefaultCallbackRetryMax
	}
	if !r.Set("deadline") {
		deadline = DefaultCallbackRetryDeadline
	}
	return initial, max, deadline
}
