package router

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/transport"
)

// retryConfig configures retryMiddleware.
type retryConfig struct {
	policy     pipeline.RetryPlan
	tierTopics []string // the stage's retry tier topics, tier 1 first
	records    *records
	pub        *transport.Publisher
	parks      *parking // nil unless ordering by key with retry tiers
	metrics    *stageMetrics
	log        *slog.Logger
	// jitter returns a number in [0, 1) (rand.Float64; a test fixes it).
	jitter func() float64
}

// retryMiddleware applies the stage's retry policy to a failed record:
// another inline attempt after a backoff while the pass has attempts left,
// then the next retry tier, then, attempts exhausted, quarantine (an
// exhausted error for the quarantine middleware outside it). A record with
// attempts left in the last tier (one that followed a parked key there)
// waits in place for the last tier's delay. With ordering by key, a record
// whose key has older records in a tier above follows them there without
// running (parking.go). A filters.Permanent error, a transient one and a
// stop pass through untouched.
func retryMiddleware(cfg retryConfig) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			if cfg.parks != nil {
				if followed, err := cfg.followParked(msg); followed {
					return nil, err
				}
			}
			out, err := h(msg)
			if err == nil {
				cfg.parks.unpark(msg, cfg.records)
				return out, nil
			}
			return cfg.failed(msg, out, err)
		}
	}
}

// followParked moves msg to the retry tier above its own where older
// records of its key are parked, if any; followed says it did (or tried:
// then err says why it failed).
func (cfg retryConfig) followParked(msg *message.Message) (followed bool, err error) {
	key, keyed := keyOf(msg)
	if !keyed {
		return false, nil
	}
	tier, p := cfg.records.tierOf(msg), partitionOf(msg)
	to, ok := cfg.parks.follow(p, string(key), tier)
	if !ok {
		return false, nil
	}
	if err := cfg.toTier(msg, to, nil); err != nil {
		cfg.parks.unfollow(p, string(key), tier, to)
		return true, err
	}
	return true, nil
}

// failed decides what becomes of a record whose attempt failed.
func (cfg retryConfig) failed(msg *message.Message, out []*message.Message, err error) ([]*message.Message, error) {
	var tr *transient
	if stopping(msg) || filters.IsPermanent(err) || errors.As(err, &tr) {
		return out, err
	}
	tier := cfg.records.tierOf(msg)
	key, keyed := keyOf(msg)
	keyed = keyed && cfg.parks != nil
	pass := 1
	if d, ok := transport.DeliveryOf(msg.Context()); ok {
		d.NoteFailure(cfg.records.now())
		pass = d.Attempt()
	}
	rp := cfg.policy
	if pass < rp.Attempts {
		cfg.metrics.count(func(sm *stageMetrics) prometheus.Counter { return sm.inline })
		return nil, &retryIn{err: err, delay: cfg.backoff(pass)}
	}
	attempt := cfg.records.attempt(msg)
	switch {
	case len(rp.Tiers) == 0 || attempt >= rp.MaxAttempts():
	case tier == len(rp.Tiers):
		// Attempts left in the last tier (a record that followed a
		// parked key there): it waits in place, so as not to pass the
		// records of its key behind it.
		cfg.metrics.count(func(sm *stageMetrics) prometheus.Counter { return sm.inline })
		return nil, &retryIn{err: err, delay: rp.Tiers[tier-1]}
	default:
		if terr := cfg.toTier(msg, tier+1, err); terr != nil {
			return nil, terr
		}
		if keyed {
			cfg.parks.moved(partitionOf(msg), string(key), tier, tier+1)
		}
		if st := stateOf(msg); st != nil {
			st.tiered = true
		}
		cfg.metrics.count(func(sm *stageMetrics) prometheus.Counter { return sm.tier })
		cfg.log.Info("record moved to retry tier", "origin", recordString(msg), "job", jobOf(msg), "tier", tier+1,
			"delay", rp.Tiers[tier], "attempt", attempt, "err", err)
		return nil, nil
	}
	return nil, &exhausted{err: err}
}

// backoff is the wait before inline retry n, with jitter, at least 1 ms.
func (cfg retryConfig) backoff(n int) time.Duration {
	b := cfg.policy.Backoff
	d := b.Delay(n)
	if b.Jitter > 0 {
		j := rand.Float64
		if cfg.jitter != nil {
			j = cfg.jitter
		}
		d = time.Duration(float64(d) * (1 + b.Jitter*(2*j()-1)))
	}
	return max(d, time.Millisecond)
}

// toTier publishes msg to retry tier n (1-based), to the partition it was
// read from. cause is the failure that moves it; nil for a record that
// follows its parked key (it was not attempted, so it is due at once and
// runs after the older records of its key). A record the broker refuses as
// its own fault (too large for the tier with the failure's headers) fails
// for good; any other publish error passes (transient).
func (cfg retryConfig) toTier(msg *message.Message, n int, cause error) error {
	topic, p := cfg.tierTopics[n-1], partitionOf(msg)
	due := cfg.records.now()
	var m *sarama.ProducerMessage
	if cause != nil {
		due = due.Add(cfg.policy.Tiers[n-1])
		m = cfg.records.failed(msg, topic, cause, p)
	} else {
		drop := map[string]bool{filters.HeaderRetryAt: true}
		var extra []sarama.RecordHeader
		if cfg.records.tierOf(msg) == 0 {
			drop[filters.HeaderAttempt], drop[filters.HeaderOrigin] = true, true
			extra = append(extra, header(filters.HeaderAttempt, "0"), header(filters.HeaderOrigin, recordString(msg)))
		}
		m = copyOf(msg, topic, drop, extra, p)
	}
	m.Headers = append(m.Headers, header(filters.HeaderRetryAt, due.UTC().Format(time.RFC3339Nano)))
	if err := cfg.pub.Send(topic, []*sarama.ProducerMessage{m}); err != nil {
		err = fmt.Errorf("move record to retry tier %d: %w", n, err)
		if transport.RecordFault(err) {
			if cause != nil {
				return filters.Permanent(fmt.Errorf("%w (and %v)", cause, err))
			}
			return filters.Permanent(err)
		}
		return &transient{err: err}
	}
	return nil
}
