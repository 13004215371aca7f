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

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/transport"
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

// settle reports each record's outcome to the subscriber (see Settle). A
// failure is logged here, at the level it deserves, and not returned to
// Watermill, whose router would log every one at ERROR ("Handler returned
// error"): a broker outage made thousands of such lines.
func (s *stage) settle(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		growStack()
		out, err := h(msg)
		if err == nil {
			if d, ok := transport.DeliveryOf(msg.Context()); ok && !d.SettlesLater() { // else when its outputs are acked (stage.handle)
				d.Ack()
			}
			return out, nil
		}
		s.logFailure(msg, err) // first: once settled, the window may hand the record out again
		settleFailed(msg, err)
		return out, nil
	}
}

// logFailure logs why a record was not done: stopping at debug, a retry
// after an outage or a failed attempt at info (the record is retried), any
// other error at warn.
func (s *stage) logFailure(msg *message.Message, err error) {
	var (
		r *retryIn
		t *transient
	)
	switch {
	case stopping(msg):
		s.log.Debug("record left for redelivery: the process is stopping", "origin", recordString(msg), "err", err)
	case errors.As(err, &r):
		s.log.Info("record failed; retrying", "origin", recordString(msg), "attempt", s.attempt(msg), "retry_in", r.delay, "err", err)
	case errors.As(err, &t):
		s.log.Info("record will be handed out again (not its fault)", "origin", recordString(msg), "err", err)
	default:
		s.log.Warn("record failed", "origin", recordString(msg), "err", err)
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
	d, ok := transport.DeliveryOf(msg.Context())
	if !ok {
		return
	}
	var (
		r *retryIn
		t *transient
	)
	switch {
	case errors.As(err, &r):
		d.RetryAfter(r.delay)
	case errors.As(err, &t):
		d.Redeliver()
	default:
		d.RetryAfter(0)
	}
}

// tierOf is the retry tier a record was read from (0: a stage input).
func (s *stage) tierOf(msg *message.Message) int {
	r, _ := transport.RecordFrom(msg.Context())
	return s.tiers[r.Topic]
}

// attempt is the number of the attempt being made on msg: the attempts
// recorded in its header when it comes from a retry tier, plus its
// hand-outs in this process.
func (s *stage) attempt(msg *message.Message) int {
	n := 1
	if d, ok := transport.DeliveryOf(msg.Context()); ok {
		n = d.Attempt()
	}
	if s.tierOf(msg) > 0 {
		v, _ := transport.LastHeader(consumedOf(msg), filters.HeaderAttempt)
		base, _ := strconv.Atoi(string(v))
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
	q := s.failed(msg, s.plan.Quarantine, err, -1)
	perr := s.out.Send(s.plan.Quarantine, []*sarama.ProducerMessage{q})
	if transport.RecordFault(perr) {
		q = s.envelope(msg, q, err, perr)
		perr = s.out.Send(s.plan.Quarantine, []*sarama.ProducerMessage{q})
	}
	if perr != nil {
		s.log.Error("cannot quarantine record; it will be retried", "err", perr, "record_err", err)
		return nil, &transient{err: perr}
	}
	s.unpark(msg)
	s.log.Warn("record quarantined", "topic", s.plan.Quarantine, "origin", recordString(msg),
		"attempt", s.attempt(msg), "err", err)
	return nil, nil
}

// envelopeKeep is how much of a payload, and at most of a key and of the
// headers, a quarantine envelope keeps.
const envelopeKeep = 64 << 10

// envelope is what goes to the quarantine in place of q, the quarantine
// copy of msg, when the broker or the producer refused q as too large (or
// invalid): the failure headers, the key and the headers of the record
// where they fit, the first envelopeKeep bytes of its payload, and
// HeaderTruncated with the original sizes. Replay refuses it; `quarantine
// show` shows it. Nothing is dropped without a trace, and the stage goes on.
func (s *stage) envelope(msg *message.Message, q *sarama.ProducerMessage, cause, refused error) *sarama.ProducerMessage {
	in := original(msg)
	payload := in.Payload
	if len(payload) > envelopeKeep {
		payload = payload[:envelopeKeep]
	}
	key := in.Key
	if len(key) > envelopeKeep {
		key = key[:envelopeKeep]
	}
	var hs []sarama.RecordHeader
	size := 0
	for _, h := range q.Headers {
		size += len(h.Key) + len(h.Value)
	}
	for _, h := range q.Headers {
		switch name := string(h.Key); {
		case name == filters.HeaderError:
			h.Value = []byte(fmt.Sprintf("%s (quarantined truncated: %v)", cause, refused))
		case size > envelopeKeep && !strings.HasPrefix(name, "millrace-") && name != transport.MessageIDHeader:
			continue // the record's own headers do not fit either
		}
		hs = append(hs, h)
	}
	hs = append(hs, header(filters.HeaderTruncated, sizes(in)))
	e := &sarama.ProducerMessage{Topic: q.Topic, Headers: hs, Value: sarama.ByteEncoder(payload)}
	if key != nil {
		e.Key = sarama.ByteEncoder(key)
	}
	s.log.Error("record too large for the quarantine; quarantining an envelope with its first bytes",
		"origin", recordString(msg), "err", refused)
	return e
}

// failed is msg's record as it goes to a retry tier or the quarantine
// (topic; to partition pin, or by key with -1): same key, payload and
// headers, in order, plus the failure's headers (those it had already are
// replaced), and the job id if it had none.
func (s *stage) failed(msg *message.Message, topic string, err error, pin int32) *sarama.ProducerMessage {
	rec := consumedOf(msg)
	now := time.Now().UTC()
	tier := s.tierOf(msg)
	origin, _ := transport.LastHeader(rec, filters.HeaderOrigin)
	if r, ok := transport.RecordFrom(msg.Context()); ok && (tier == 0 || len(origin) == 0) {
		origin = []byte(r.String())
	}
	first := now
	if d, ok := transport.DeliveryOf(msg.Context()); ok && !d.FirstFailure().IsZero() {
		first = d.FirstFailure()
	}
	firstText := first.UTC().Format(time.RFC3339Nano)
	if v, _ := transport.LastHeader(rec, filters.HeaderFirstFailure); tier > 0 && len(v) > 0 {
		firstText = string(v)
	}
	extra := []sarama.RecordHeader{
		header(filters.HeaderError, err.Error()),
		header(filters.HeaderStage, s.plan.Name),
		header(filters.HeaderAttempt, strconv.Itoa(s.attempt(msg))),
		{Key: []byte(filters.HeaderOrigin), Value: origin},
		header(filters.HeaderFirstFailure, firstText),
		header(filters.HeaderLastFailure, now.Format(time.RFC3339Nano)),
	}
	var pe *panicError
	if errors.As(err, &pe) {
		extra = append(extra, header(filters.HeaderStack, pe.stack))
	}
	if !original(msg).Headers.Has(filters.HeaderJob) {
		extra = append(extra, header(filters.HeaderJob, jobID(msg.Context())))
	}
	return copyOf(msg, topic, failureRewrites, extra, pin)
}

// failureRewrites are the headers failed sets anew (a record that failed
// before has them).
var failureRewrites = map[string]bool{
	filters.HeaderError: true, filters.HeaderStage: true, filters.HeaderAttempt: true,
	filters.HeaderOrigin: true, filters.HeaderFirstFailure: true, filters.HeaderLastFailure: true,
	filters.HeaderStack: true, filters.HeaderRetryAt: true,
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
	key, keyed := keyOf(msg)
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
	key, keyed := keyOf(msg)
	keyed = keyed && s.parks != nil
	pass := 1
	if d, ok := transport.DeliveryOf(msg.Context()); ok {
		d.NoteFailure(time.Now())
		pass = d.Attempt()
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
		if terr := s.toTier(msg, tier+1, err); terr != nil {
			return nil, terr
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
// runs after the older records of its key). A record the broker refuses as
// its own fault (too large for the tier with the failure's headers) fails
// for good; any other publish error passes (transient).
func (s *stage) toTier(msg *message.Message, n int, cause error) error {
	topic, p := s.plan.RetryTopics[n-1], partitionOf(msg)
	due := time.Now()
	var m *sarama.ProducerMessage
	if cause != nil {
		due = due.Add(s.plan.Retry.Tiers[n-1])
		m = s.failed(msg, topic, cause, p)
	} else {
		drop := map[string]bool{filters.HeaderRetryAt: true}
		var extra []sarama.RecordHeader
		if s.tierOf(msg) == 0 {
			drop[filters.HeaderAttempt], drop[filters.HeaderOrigin] = true, true
			extra = append(extra, header(filters.HeaderAttempt, "0"), header(filters.HeaderOrigin, recordString(msg)))
		}
		m = copyOf(msg, topic, drop, extra, p)
	}
	m.Headers = append(m.Headers, header(filters.HeaderRetryAt, due.UTC().Format(time.RFC3339Nano)))
	if err := s.out.Send(topic, []*sarama.ProducerMessage{m}); err != nil {
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

// unpark counts a record read from a retry tier as finished.
func (s *stage) unpark(msg *message.Message) {
	if s.parks == nil {
		return
	}
	if key, ok := keyOf(msg); ok {
		s.parks.done(partitionOf(msg), string(key), s.tierOf(msg))
	}
}

func partitionOf(msg *message.Message) int32 {
	r, _ := transport.RecordFrom(msg.Context())
	return r.Partition
}

// maxDedupKey bounds the length of a dedup key, in bytes: a key is written
// to the changelog as a record key, and an idempotency key is short.
const maxDedupKey = 16 << 10

// dedupe skips a record whose idempotency key was processed within the
// window, and records the key once the record's outputs are acknowledged.
//
// A record whose outputs may be in the output topic although it was not
// recorded — publishing them failed (the broker may have written them
// anyway), or they were acked and recording the key failed — is not run
// again straight away: the output topic is searched for its outputs first
// (recoverDedupGap), and a key all of whose outputs are there is recorded,
// so the record is skipped.
func (s *stage) dedupe(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		key, ok, err := s.plan.Dedup.KeyOf(input(msg))
		switch {
		case err != nil:
			return nil, filters.Permanent(fmt.Errorf("dedup key %s: %w", s.plan.Dedup.Key, err))
		case !ok:
			return h(msg)
		case len(key) > maxDedupKey:
			return nil, filters.Permanent(fmt.Errorf("dedup key %s is %d bytes long; at most %d", s.plan.Dedup.Key, len(key), maxDedupKey))
		}
		p := partitionOf(msg)
		d, _ := transport.DeliveryOf(msg.Context())
		if d != nil && !d.Uncertain().IsZero() {
			if err := s.findPublished(msg.Context(), d.Uncertain()); err != nil {
				return nil, &transient{err: err}
			}
			d.SetUncertain(time.Time{})
		}
		if s.dedup.seen(p, key) {
			s.log.Debug("duplicate skipped", "dedup_key", key, "origin", recordString(msg))
			return nil, nil
		}
		withDedupKey(msg, key)
		out, err := h(msg)
		if err != nil {
			return out, err
		}
		if err := s.dedup.record(p, key); err != nil {
			if d != nil {
				d.SetUncertain(time.Now())
			}
			return nil, &transient{err: fmt.Errorf("record dedup key: %w", err)}
		}
		return out, nil
	}
}

func recordString(msg *message.Message) string {
	r, _ := transport.RecordFrom(msg.Context())
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
func (s *stage) withTimeout(msg *message.Message, f func(context.Context) ([]*filters.Message, error)) ([]*filters.Message, error) {
	ctx := msg.Context()
	h := stateOf(msg)
	if s.watch == nil || h == nil {
		return callFilter(ctx, f)
	}
	s.watch.watch(h)
	outs, err := callFilter(ctx, f)
	s.watch.done(h)
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
