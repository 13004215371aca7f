package jobs

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jonboulle/clockwork"
)

// Pending is one callback delivery: a finished job's status, to be POSTed
// to URL until it is delivered or given up. It is what the caller keeps
// durable (in the status topic) so that another process can finish it.
type Pending struct {
	// DeliveryID names the delivery; it is sent as HeaderDelivery on every
	// attempt, so receivers dedupe on it. Required.
	DeliveryID string
	// Job is the id of the job; sent as HeaderJob.
	Job string
	// Body is the request body: the job's status JSON. The queue keeps it;
	// the caller must not modify it once added.
	Body []byte
	// URL is where it goes: http or https. Required.
	URL string
	// Attempts is how many attempts have been made: while the delivery is
	// pending, all failed.
	Attempts int
	// NextAt is when the next attempt is due; a time in the past (or zero)
	// is due at once.
	NextAt time.Time
	// Deadline is when the delivery is given up (docs/jobs.md: retry.deadline
	// after the job finished): no attempt starts at or after it. Required.
	Deadline time.Time
	// LastError is the error of the last failed attempt, as logged (no
	// secret, no query string); empty before the first.
	LastError string
}

// CallbackOutcome is what became of a callback attempt, for counting.
type CallbackOutcome string

// The outcomes. Finish gets CallbackDelivered or CallbackGivenUp; the
// OnOutcome hook gets all three.
const (
	// CallbackDelivered is a 2xx response: the delivery is done.
	CallbackDelivered CallbackOutcome = "delivered"
	// CallbackRetried is a failed attempt with another one scheduled.
	CallbackRetried CallbackOutcome = "retried"
	// CallbackGivenUp is the end of a delivery that failed for good: a
	// permanent error, or the deadline passed before another attempt.
	CallbackGivenUp CallbackOutcome = "given_up"
)

// ErrCallbackDeadline is wrapped by the error Finish gets when a delivery
// is given up because its Deadline passed (or the next attempt would have
// been after it).
var ErrCallbackDeadline = errors.New("callback retry deadline passed")

// CallbackStore keeps the queue's state durable (in the status topic).
//
// The queue calls it on every change of a delivery's state, from the
// goroutine of that delivery's attempt: calls for one delivery never
// overlap, calls for different ones may (up to Concurrency at once). It
// does not call it on Add: the caller has the Pending already. The context
// is not cancelled when Run's ends, so an outcome reached while stopping
// is still recorded; the store bounds its own calls. An error is logged and
// the queue carries on: the durable state is then older than the queue's,
// which a restart turns into an early attempt, or a repeated one, never a
// lost one (at-least-once).
type CallbackStore interface {
	// Save records p after a failed attempt that will be retried: its
	// Attempts, NextAt and LastError are new.
	Save(ctx context.Context, p Pending) error
	// Finish records the end of p's delivery: outcome is CallbackDelivered
	// (err nil) or CallbackGivenUp (err says why: a *CallbackError, or one
	// wrapping ErrCallbackDeadline). p.Attempts counts every attempt made,
	// the last one included.
	Finish(ctx context.Context, p Pending, outcome CallbackOutcome, err error) error
}

// CallbackQueueConfig configures a CallbackQueue.
type CallbackQueueConfig struct {
	// Post makes one attempt to deliver a Pending: (*Poster).Post. An
	// error that is not a *CallbackError is retryable. Required.
	Post func(ctx context.Context, p Pending) error
	// Store keeps the queue's state durable. Required.
	Store CallbackStore
	// Clock is the time attempts are scheduled by; nil means the real
	// clock.
	Clock clockwork.Clock
	// Concurrency is how many attempts run at once, at most. Default 4.
	Concurrency int
	// InitialBackoff and MaxBackoff bound the delay after a failed attempt:
	// the n-th failure waits InitialBackoff·2^(n−1), jittered by ±50%, then
	// clamped to [InitialBackoff, MaxBackoff] (a Retry-After may ask for
	// longer). Defaults 1s and 5m.
	InitialBackoff, MaxBackoff time.Duration
	// OnOutcome, if set, is called with the outcome of each attempt, and
	// with CallbackGivenUp for a delivery given up without one (its
	// deadline passed while it waited): for counting. It is called before
	// the store records the outcome, and must be quick.
	OnOutcome func(CallbackOutcome)
	// Logger gets a line per outcome; never the secret or the body, and
	// URLs as scheme://host/path. Nil discards.
	Logger *slog.Logger
}

func (c *CallbackQueueConfig) setDefaults() {
	if c.Clock == nil {
		c.Clock = clockwork.NewRealClock()
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.InitialBackoff <= 0 {
		c.InitialBackoff = time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = max(5*time.Minute, c.InitialBackoff)
	}
	if c.OnOutcome == nil {
		c.OnOutcome = func(CallbackOutcome) {}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports what is missing from the config, or contradicts itself.
func (c CallbackQueueConfig) Validate() error {
	if c.Post == nil {
		return errors.New("no Post")
	}
	if c.Store == nil {
		return errors.New("no store")
	}
	if c.MaxBackoff < c.InitialBackoff {
		return fmt.Errorf("max backoff %s is less than initial backoff %s", c.MaxBackoff, c.InitialBackoff)
	}
	return nil
}

// CallbackQueue delivers callbacks with retries (docs/jobs.md,
// "Callbacks"). Add queues a Pending; Run attempts each when it is due,
// Concurrency at most at once. A failed attempt that may be retried is
// scheduled again after an exponential, jittered backoff, and saved; a
// delivery ends when an attempt succeeds, when one fails for good, or when
// its Deadline passes, and is then finished in the store. A Pending whose
// NextAt has passed (restored after a restart) is attempted at once; one
// whose Deadline has passed is given up without an attempt. Delivery is
// at-least-once: receivers dedupe on the delivery id.
//
// Its methods are safe for concurrent use.
type CallbackQueue struct {
	cfg     CallbackQueueConfig
	running atomic.Bool // Run is running

	mu      sync.Mutex
	waiting dueHeap         // the deliveries not being attempted, soonest first
	queued  map[string]bool // delivery ids waiting or being attempted
	busy    int             // attempts running
	seq     uint64          // Add order, to break ties in waiting
	wake    chan struct{}   // cap 1: the schedule changed
}

// NewCallbackQueue returns an empty queue, or an error wrapping what the
// config lacks.
func NewCallbackQueue(cfg CallbackQueueConfig) (*CallbackQueue, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid callback queue config: %w", err)
	}
	return &CallbackQueue{cfg: cfg, queued: make(map[string]bool), wake: make(chan struct{}, 1)}, nil
}

// Add queues p, for Run to attempt when it is due. A delivery id already in
// the queue is ignored (nil): the queue's own state of it is newer than a
// restored one. The error says what p lacks: a DeliveryID, a URL or a
// Deadline.
func (q *CallbackQueue) Add(p Pending) error {
	switch {
	case p.DeliveryID == "":
		return errors.New("callback has no delivery id")
	case p.URL == "":
		return fmt.Errorf("callback %s has no URL", p.DeliveryID)
	case p.Deadline.IsZero():
		return fmt.Errorf("callback %s has no deadline", p.DeliveryID)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.queued[p.DeliveryID] {
		return nil
	}
	q.queued[p.DeliveryID] = true
	q.push(p)
	return nil
}

// push puts p in waiting and wakes Run. q.mu is held.
func (q *CallbackQueue) push(p Pending) {
	q.seq++
	heap.Push(&q.waiting, due{p: p, seq: q.seq})
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Run attempts the queued deliveries as they come due until ctx ends, then
// waits for the attempts running to return (their requests are cancelled:
// such an attempt does not count, and its delivery stays queued, unsaved,
// as it was) and returns nil. It returns an error at once if the queue is
// already running.
func (q *CallbackQueue) Run(ctx context.Context) error {
	if !q.running.CompareAndSwap(false, true) {
		return errors.New("callback queue is already running")
	}
	defer q.running.Store(false)
	var wg sync.WaitGroup
	defer wg.Wait()
	for ctx.Err() == nil {
		q.mu.Lock()
		now := q.cfg.Clock.Now()
		for q.busy < q.cfg.Concurrency && len(q.waiting) > 0 && !q.waiting[0].at().After(now) {
			p := heap.Pop(&q.waiting).(due).p
			q.busy++
			wg.Go(func() { q.attempt(ctx, p) })
		}
		var timer clockwork.Timer
		var fire <-chan time.Time
		if q.busy < q.cfg.Concurrency && len(q.waiting) > 0 {
			at := q.waiting[0].at()
			timer = q.cfg.Clock.NewTimer(at.Sub(now))
			if !q.cfg.Clock.Now().Before(at) {
				// The clock jumped past at since now was read (a fake
				// clock's Advance): the timer, counted from the new
				// time, would fire late.
				timer.Stop()
				q.mu.Unlock()
				continue
			}
			fire = timer.Chan()
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-q.wake:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
	}
	return nil
}

// attempt makes one attempt at p, or gives it up if its deadline passed,
// and records what came of it.
func (q *CallbackQueue) attempt(ctx context.Context, p Pending) {
	log := q.cfg.Logger.With("delivery", p.DeliveryID, "job", p.Job, "url", showURL(p.URL))
	store := context.WithoutCancel(ctx)
	if !q.cfg.Clock.Now().Before(p.Deadline) {
		err := fmt.Errorf("%w (%s) after %d attempts", ErrCallbackDeadline, p.Deadline.Format(time.RFC3339), p.Attempts)
		if p.LastError != "" {
			err = fmt.Errorf("%w; last: %s", err, p.LastError)
		}
		q.finish(store, log, p, CallbackGivenUp, err)
		return
	}
	err := q.cfg.Post(ctx, p)
	if err != nil && ctx.Err() != nil {
		q.requeue(p) // stopping: not an attempt
		return
	}
	p.Attempts++
	if err == nil {
		q.finish(store, log, p, CallbackDelivered, nil)
		return
	}
	retryable, after := true, time.Duration(0)
	var ce *CallbackError
	if errors.As(err, &ce) {
		retryable, after = ce.Retryable, ce.RetryAfter
	}
	if !retryable {
		q.finish(store, log, p, CallbackGivenUp, err)
		return
	}
	next := q.cfg.Clock.Now().Add(max(q.backoff(p.Attempts), after))
	if !next.Before(p.Deadline) {
		q.finish(store, log, p, CallbackGivenUp, fmt.Errorf("%w (%s) before attempt %d: %w",
			ErrCallbackDeadline, p.Deadline.Format(time.RFC3339), p.Attempts+1, err))
		return
	}
	p.NextAt, p.LastError = next, err.Error()
	q.cfg.OnOutcome(CallbackRetried)
	if serr := q.cfg.Store.Save(store, p); serr != nil {
		log.Error("cannot save callback state", "err", serr)
	}
	log.Warn("callback attempt failed; retrying", "attempt", p.Attempts, "next_at", next, "err", err)
	q.requeue(p)
}

// finish ends p's delivery with outcome.
func (q *CallbackQueue) finish(ctx context.Context, log *slog.Logger, p Pending, outcome CallbackOutcome, err error) {
	q.cfg.OnOutcome(outcome)
	if ferr := q.cfg.Store.Finish(ctx, p, outcome, err); ferr != nil {
		log.Error("cannot record callback outcome", "outcome", outcome, "err", ferr)
	}
	if outcome == CallbackDelivered {
		log.Info("callback delivered", "attempts", p.Attempts)
	} else {
		log.Error("callback given up", "attempts", p.Attempts, "err", err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.queued, p.DeliveryID)
	q.release()
}

// requeue puts p back in waiting after an attempt.
func (q *CallbackQueue) requeue(p Pending) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.push(p)
	q.release()
}

// release frees an attempt's slot. q.mu is held.
func (q *CallbackQueue) release() {
	q.busy--
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// backoff is the delay after the n-th failed attempt (n ≥ 1): the n-th
// interval of an exponential backoff from InitialBackoff, doubling,
// jittered by ±50%, clamped to [InitialBackoff, MaxBackoff]. It is replayed
// from n, not kept, so that a Pending restored after a restart goes on
// where it was.
func (q *CallbackQueue) backoff(n int) time.Duration {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     q.cfg.InitialBackoff,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         q.cfg.MaxBackoff,
	}
	b.Reset()
	var d time.Duration
	for range min(n, 64) { // past 64 doublings the interval is MaxInterval
		d = b.NextBackOff()
	}
	return min(max(d, q.cfg.InitialBackoff), q.cfg.MaxBackoff)
}

// showURL is raw as scheme://host/path, for logs.
func showURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return redactURL(u)
}

// due is a waiting delivery.
type due struct {
	p   Pending
	seq uint64
}

// at is when d is next due: its NextAt, or its Deadline if that is sooner
// (to give it up).
func (d due) at() time.Time {
	if d.p.Deadline.Before(d.p.NextAt) {
		return d.p.Deadline
	}
	return d.p.NextAt
}

// dueHeap orders waiting deliveries by when they are due, then by Add.
type dueHeap []due

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	if ai, aj := h[i].at(), h[j].at(); !ai.Equal(aj) {
		return ai.Before(aj)
	}
	return h[i].seq < h[j].seq
}
func (h dueHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)   { *h = append(*h, x.(due)) }
func (h *dueHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	*h = old[:len(old)-1]
	return d
}
