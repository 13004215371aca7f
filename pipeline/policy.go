package pipeline

import (
	"time"

	"github.com/millrace/millrace/filters"
)

// Built-in failure-handling defaults, used where pipelines.yaml sets none.
const (
	DefaultAttempts          = 10
	DefaultAttemptsWithTiers = 1
	DefaultBackoffInitial    = 200 * time.Millisecond
	DefaultBackoffMax        = 30 * time.Second
	DefaultBackoffMultiplier = 2.0
	DefaultBackoffJitter     = 0.2
	DefaultTimeout           = 60 * time.Second
	DefaultDedupWindow       = 24 * time.Hour
	DefaultDedupMaxKeys      = 1_000_000
)

// Ordering says whether records with the same key keep their order.
type Ordering string

const (
	// OrderByKey (the default) runs records of one key one at a time, in
	// offset order, and parks later records of a key behind one waiting in
	// a retry tier.
	OrderByKey Ordering = "key"
	// OrderNone runs every record concurrently; retried records may be
	// overtaken.
	OrderNone Ordering = "none"
)

// RetryPlan is how a stage retries a failed record. Each pass makes up to
// Attempts inline attempts (the record waits in place, its key blocked,
// other keys flowing), Backoff apart. When a pass fails and Tiers remain,
// the record moves to the next retry tier topic and is tried again Tiers[n]
// later without blocking its partition. When the last pass fails the
// record is quarantined. A filters.Permanent error is never retried.
type RetryPlan struct {
	Attempts int
	Backoff  BackoffPlan
	// Tiers are the delays of the retry tier topics, in order.
	Tiers []time.Duration
}

// MaxAttempts is how many attempts a record gets in all.
func (r RetryPlan) MaxAttempts() int { return r.Attempts * (len(r.Tiers) + 1) }

// BackoffPlan spaces inline attempts: the n-th retry waits
// Initial*Multiplier^(n-1), at most Max, varied by ±Jitter (a fraction).
type BackoffPlan struct {
	Initial, Max time.Duration
	Multiplier   float64
	Jitter       float64
}

// Delay is the wait before inline retry n (1-based), without jitter.
func (b BackoffPlan) Delay(n int) time.Duration {
	d := float64(b.Initial)
	for i := 1; i < n && d < float64(b.Max); i++ {
		d *= b.Multiplier
	}
	return min(time.Duration(d), b.Max)
}

// DedupPlan makes a stage process each idempotency key once per Window.
type DedupPlan struct {
	// Key is the key expression as written: a jq expression, or
	// "header:NAME".
	Key string
	// KeyOf evaluates Key on a record. ok is false when the record has no
	// key (such a record is processed, never dropped).
	KeyOf func(msg *filters.Message) (key string, ok bool, err error)
	// Window is how long a processed key is remembered.
	Window time.Duration
	// MaxKeys bounds the keys remembered per stage and process; beyond it
	// the oldest are forgotten first.
	MaxKeys int
	// Changelog is the compacted topic the keys are recorded in.
	Changelog string
}

// WeightedTopic is one input topic of a pipeline, with its priority weight.
type WeightedTopic struct {
	// Name is what `millrace produce --priority` calls it (the topic
	// unless set).
	Name   string
	Topic  string
	Weight int
}
