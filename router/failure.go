package router

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/filters"
)

// The stage's middleware, outermost first (DESIGN.md): settle → recoverer →
// quarantine → retry → dedup → the stage handler (timeout → recover →
// filter, then publish). Errors travel outwards typed:
//
//   - retryIn: retry inline after a delay (the record waits in its window);
//   - exhausted or a filters.Permanent error: quarantine it;
//   - transient (publishing failed): not the record's fault, so not an
//     attempt; handed out again with the subscriber's backoff, for ever;
//   - any error while the record's context is cancelled: the process is
//     stopping; the record is left for redelivery, never quarantined.

type retryIn struct {
	err   error
	delay time.Duration
}

func (e *retryIn) Error() string { return e.err.Error() }
func (e *retryIn) Unwrap() error { return e.err }

type exhausted struct{ err error }

func (e *exhausted) Error() string { return e.err.Error() }
func (e *exhausted) Unwrap() error { return e.err }

type transient struct{ err error }

func (e *transient) Error() string { return e.err.Error() }
func (e *transient) Unwrap() error { return e.err }

// stopping reports whether msg was abandoned because the process stops
// (its context was cancelled, and not by the stage's timeout).
func stopping(msg *message.Message) bool {
	ctx := msg.Context()
	return ctx.Err() != nil && !timedOut(ctx)
}

// settle reports each record's outcome to the subscriber (see Settle).
func settle(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		growStack()
		out, err := h(msg)
		if err == nil {
			if c, ok := handOutFrom(msg.Context()); !ok {
				Settle(msg.Context(), true)
			} else if !c.settleLater { // else when its outputs are acked (stage.handle)
				c.e.settle(true, 0)
			}
			return out, nil
		}
		settleFailed(msg, err)
		return out, err
	}
}

// growStack makes the handler's goroutine grow its stack now, while it
// holds four frames, rather than deep in the filter call. Watermill starts a
// goroutine per record, with a 2 KiB stack (the runtime's adaptive start
// stays there: most goroutines are small), and a record's handling needs
// more: the stack was copied, with a dozen frames to adjust, once per
// record — 9% of a no-op stage's CPU. Growing it here costs a third of that
// (measured with testkit/bench -cpuprofile-prefix: runtime.newstack 9.2%
// -> 2.6%). The frame stays below the 4 KiB the stack grows to.
//
//go:noinline
func growStack() {
	var frame [1500]byte
	keep(frame[:])
}

//go:noinline
func keep([]byte) {}

func settleFailed(msg *message.Message, err error) {
	var r *retryIn
	if errors.As(err, &r) {
		SettleRetry(msg.Context(), r.delay)
		return
	}
	var t *transient
	if h, ok := handOutFrom(msg.Context()); ok && errors.As(err, &t) {
		h.e.retryNotAttempt()
		return
	}
	Settle(msg.Context(), false)
}

// tierOf is the retry tier a record was read from (0: a stage input).
func (s *stage) tierOf(msg *message.Message) int {
	r, _ := RecordFrom(msg.Context())
	return s.tiers[r.Topic]
}

// attempt is the number of the attempt being made on msg: the attempts
// recorded in its header when it comes from a retry tier, plus its
// hand-outs in this process.
func (s *stage) attempt(msg *message.Message) int {
	n := 1
	if d, ok := DeliveryFrom(msg.Context()); ok {
		n = d.N
	}
	if s.tierOf(msg) > 0 {
		base, _ := strconv.Atoi(msg.Metadata[filters.HeaderAttempt])
		n += max(base, 0)
	}
	return n
}

// quarantine moves a record that failed for good (attempts exhausted, or a
// filters.Permanent error) to the pipeline's quarantine topic, unchanged
// (same key and payload, original headers) plus headers saying why, and
// acks it so that the stage goes on. If the quarantine topic cannot be
// written the record is retried, never dropped.
//
// The middleware here keep their success path in a small closure and the
// failure path in a method: a handler goroutine starts with a 2 KiB stack,
// and the frames of the failure paths made every record's goroutine grow
// (copy) its stack, 6% of a stage's CPU.
func (s *stage) quarantine(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		if err == nil {
			return out, nil
		}
		return s.quarantineFailed(msg, out, err)
	}
}

func (s *stage) quarantineFailed(msg *message.Message, out []*message.Message, err error) ([]*message.Message, error) {
	var ex *exhausted
	if stopping(msg) || !(errors.As(err, &ex) || filters.IsPermanent(err)) {
		return out, err
	}
	q := s.failed(msg, err)
	if perr := s.out.Publish(s.plan.Quarantine, q); perr != nil {
		s.log.Error("cannot quarantine record; it will be retried", "err", perr, "record_err", err)
		return nil, &transient{err: perr}
	}
	s.unpark(msg)
	s.log.Warn("record quarantined", "topic", s.plan.Quarantine, "origin", q.Metadata[filters.HeaderOrigin],
		"attempt", q.Metadata[filters.HeaderAttempt], "err", err)
	return nil, nil
}

// failed is msg as it goes to a retry tier or quarantine: same key,
// payload and headers, plus the failure's headers.
func (s *stage) failed(msg *message.Message, err error) *message.Message {
	q := message.NewMessage(newMessageID(), msg.Payload)
	q.Metadata = make(message.Metadata, len(msg.Metadata)+8)
	for k, v := range msg.Metadata {
		q.Metadata[k] = v
	}
	now := time.Now().UTC()
	tier := s.tierOf(msg)
	q.Metadata[filters.HeaderError] = err.Error()
	q.Metadata[filters.HeaderStage] = s.plan.Name
	q.Metadata[filters.HeaderAttempt] = strconv.Itoa(s.attempt(msg))
	if r, ok := RecordFrom(msg.Context()); ok && (tier == 0 || q.Metadata[filters.HeaderOrigin] == "") {
		q.Metadata[filters.HeaderOrigin] = r.String()
	}
	first := now
	if d, ok := DeliveryFrom(msg.Context()); ok && !d.FirstFailure.IsZero() {
		first = d.FirstFailure
	}
	if v := q.Metadata[filters.HeaderFirstFailure]; tier == 0 || v == "" {
		q.Metadata[filters.HeaderFirstFailure] = first.UTC().Format(time.RFC3339Nano)
	}
	q.Metadata[filters.HeaderLastFailure] = now.Format(time.RFC3339Nano)
	delete(q.Metadata, filters.HeaderStack)
	delete(q.Metadata, filters.HeaderRetryAt)
	var pe *panicError
	if errors.As(err, &pe) {
		q.Metadata[filters.HeaderStack] = pe.stack
	}
	if q.Metadata[filters.HeaderJob] == "" {
		q.Metadata[filters.HeaderJob] = jobID(msg.Context())
	}
	return q
}

// retry applies the stage's retry policy to a failed record: another
// inline attempt after a backoff while the pass has attempts left, then the
// next retry tier, then, attempts exhausted, quarantine. A record with
// attempts left in the last tier (one that followed a parked key there)
// waits in place for the last tier's delay. With ordering by key, a record
// whose key has older records in a tier above follows them there.
func (s *stage) retry(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		if s.parks != nil {
			if followed, err := s.followParked(msg); followed {
				return nil, err
			}
		}
		out, err := h(msg)
		if err == nil {
			s.unpark(msg)
			return out, nil
		}
		return s.retryFailed(msg, out, err)
	}
}

// followParked moves msg to the retry tier above its own where older
// records of its key are parked, if any; followed says it did (or tried:
// then err says why it failed).
func (s *stage) followParked(msg *message.Message) (followed bool, err error) {
	key, keyed := MessageKey(msg)
	if !keyed {
		return false, nil
	}
	tier, p := s.tierOf(msg), partitionOf(msg)
	to, ok := s.parks.follow(p, string(key), tier)
	if !ok {
		return false, nil
	}
	if err := s.toTier(msg, to, nil); err != nil {
		s.parks.unfollow(p, string(key), tier, to)
		return true, err
	}
	return true, nil
}

// retryFailed decides what becomes of a record whose attempt failed.
func (s *stage) retryFailed(msg *message.Message, out []*message.Message, err error) ([]*message.Message, error) {
	var tr *transient
	if stopping(msg) || filters.IsPermanent(err) || errors.As(err, &tr) {
		return out, err
	}
	tier := s.tierOf(msg)
	key, keyed := MessageKey(msg)
	keyed = keyed && s.parks != nil
	d, _ := DeliveryFrom(msg.Context())
	if d != nil && d.FirstFailure.IsZero() {
		d.FirstFailure = time.Now()
	}
	pass := 1
	if d != nil {
		pass = d.N
	}
	rp := s.plan.Retry
	if pass < rp.Attempts {
		return nil, &retryIn{err: err, delay: s.backoff(pass)}
	}
	attempt := s.attempt(msg)
	switch {
	case len(rp.Tiers) == 0 || attempt >= rp.MaxAttempts():
	case tier == len(rp.Tiers):
		// Attempts left in the last tier (a record that followed a
		// parked key there): it waits in place, so as not to pass the
		// records of its key behind it.
		return nil, &retryIn{err: err, delay: rp.Tiers[tier-1]}
	default:
		if err := s.toTier(msg, tier+1, err); err != nil {
			return nil, err
		}
		if keyed {
			s.parks.moved(partitionOf(msg), string(key), tier, tier+1)
		}
		s.log.Info("record moved to retry tier", "tier", tier+1, "delay", rp.Tiers[tier], "attempt", attempt, "err", err)
		return nil, nil
	}
	return nil, &exhausted{err: err}
}

// backoff is the wait before inline retry n, with jitter.
func (s *stage) backoff(n int) time.Duration {
	b := s.plan.Retry.Backoff
	d := b.Delay(n)
	if b.Jitter > 0 {
		d = time.Duration(float64(d) * (1 + b.Jitter*(2*rand.Float64()-1)))
	}
	return max(d, time.Millisecond)
}

// toTier publishes msg to retry tier n (1-based), to the partition it was
// read from. cause is the failure that moves it; nil for a record that
// follows its parked key (it was not attempted, so it is due at once and
// runs after the older records of its key).
func (s *stage) toTier(msg *message.Message, n int, cause error) error {
	var m *message.Message
	due := time.Now()
	if cause != nil {
		m = s.failed(msg, cause)
		due = due.Add(s.plan.Retry.Tiers[n-1])
	} else {
		m = msg.Copy()
		m.UUID = newMessageID()
		if s.tierOf(msg) == 0 {
			m.Metadata[filters.HeaderAttempt] = "0"
			if r, ok := RecordFrom(msg.Context()); ok {
				m.Metadata[filters.HeaderOrigin] = r.String()
			}
		}
	}
	m.Metadata[filters.HeaderRetryAt] = due.UTC().Format(time.RFC3339Nano)
	SetMessagePartition(m, partitionOf(msg))
	if err := s.out.Publish(s.plan.RetryTopics[n-1], m); err != nil {
		return &transient{err: fmt.Errorf("move record to retry tier %d: %w", n, err)}
	}
	return nil
}

// unpark counts a record read from a retry tier as finished.
func (s *stage) unpark(msg *message.Message) {
	if s.parks == nil {
		return
	}
	if key, ok := MessageKey(msg); ok {
		s.parks.done(partitionOf(msg), string(key), s.tierOf(msg))
	}
}

func partitionOf(msg *message.Message) int32 {
	r, _ := RecordFrom(msg.Context())
	return r.Partition
}

// dedup skips a record whose idempotency key was processed within the
// window, and records the key once the record's outputs are acknowledged.
func (s *stage) dedupe(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		key, ok, err := s.plan.Dedup.KeyOf(toFilterMessage(msg))
		if err != nil {
			return nil, filters.Permanent(fmt.Errorf("dedup key %s: %w", s.plan.Dedup.Key, err))
		}
		p := partitionOf(msg)
		if ok && s.dedup.seen(p, key) {
			s.log.Debug("duplicate skipped", "dedup_key", key, "origin", recordString(msg))
			return nil, nil
		}
		if ok {
			withDedupKey(msg, key)
		}
		out, err := h(msg)
		if err != nil || !ok {
			return out, err
		}
		if err := s.dedup.record(p, key); err != nil {
			return nil, &transient{err: fmt.Errorf("record dedup key: %w", err)}
		}
		return out, nil
	}
}

func recordString(msg *message.Message) string {
	r, _ := RecordFrom(msg.Context())
	return r.String()
}

// panicError is a filter's panic as a failure.
type panicError struct {
	value any
	stack string
}

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.value) }

// withTimeout runs f, watched by the stage's watchdog: past the timeout
// the record's context is cancelled and the call fails (retryably).
func (s *stage) withTimeout(ctx context.Context, f func(context.Context) ([]*filters.Message, error)) ([]*filters.Message, error) {
	d, ok := DeliveryFrom(ctx)
	if s.watch == nil || !ok {
		return callFilter(ctx, f)
	}
	s.watch.watch(d)
	outs, err := callFilter(ctx, f)
	s.watch.done(d)
	if timedOut(ctx) {
		if err == nil || errors.Is(err, context.Canceled) {
			return nil, fmt.Errorf("filter call timed out after %s", s.plan.Timeout)
		}
		return nil, fmt.Errorf("filter call timed out after %s: %w", s.plan.Timeout, err)
	}
	return outs, err
}

// callFilter runs f, turning a panic into a *panicError with a short
// stack summary.
func callFilter(ctx context.Context, f func(context.Context) ([]*filters.Message, error)) (outs []*filters.Message, err error) {
	defer func() {
		if v := recover(); v != nil {
			outs, err = nil, &panicError{value: v, stack: stackSummary(3, 6)}
		}
	}()
	return f(ctx)
}

// stackSummary is a short summary of the panicking goroutine's stack:
// up to max frames, innermost first, without runtime and millrace frames.
func stackSummary(skip, max int) string {
	pcs := make([]uintptr, 32)
	n := runtime.Callers(skip, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	var out []string
	for len(out) < max {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, "runtime.") && !strings.HasPrefix(f.Function, "github.com/millrace/millrace/router.") {
			out = append(out, fmt.Sprintf("%s (%s:%d)", f.Function, filepath.Base(f.File), f.Line))
		}
		if !more {
			break
		}
	}
	return strings.Join(out, " < ")
}
