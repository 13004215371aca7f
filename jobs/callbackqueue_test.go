package jobs_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/millrace/millrace/jobs"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// store is a CallbackStore that keeps the calls and hands them to the test.
type store struct {
	saved    chan jobs.Pending
	finished chan finished
}

type finished struct {
	p       jobs.Pending
	outcome jobs.CallbackOutcome
	err     error
}

func newStore() *store {
	return &store{saved: make(chan jobs.Pending, 100), finished: make(chan finished, 100)}
}

func (s *store) Save(_ context.Context, p jobs.Pending) error {
	s.saved <- p
	return nil
}

func (s *store) Finish(_ context.Context, p jobs.Pending, outcome jobs.CallbackOutcome, err error) error {
	s.finished <- finished{p, outcome, err}
	return nil
}

// recv awaits the next value of ch.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("nothing came within 10s")
		panic("unreachable")
	}
}

// none checks that nothing is in ch now.
func none[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected %s: %+v", what, v)
	default:
	}
}

// queue is a running CallbackQueue with a fake clock at t0, a store and
// the outcomes its hook counted.
type queue struct {
	*jobs.CallbackQueue
	clock *clockwork.FakeClock
	store *store
	log   *lockedBuffer

	mu       sync.Mutex
	outcomes []jobs.CallbackOutcome
	stop     func()
}

func startQueue(t *testing.T, cfg jobs.CallbackQueueConfig, poster jobs.PosterConfig) *queue {
	t.Helper()
	q := &queue{clock: clockwork.NewFakeClockAt(t0), store: newStore(), log: &lockedBuffer{}}
	cfg.Post = newPoster(t, poster).Post
	cfg.Store = q.store
	cfg.Clock = q.clock
	cfg.OnOutcome = func(o jobs.CallbackOutcome) {
		q.mu.Lock()
		q.outcomes = append(q.outcomes, o)
		q.mu.Unlock()
	}
	cfg.Logger = slog.New(slog.NewTextHandler(q.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var err error
	if q.CallbackQueue, err = jobs.NewCallbackQueue(cfg); err != nil {
		t.Fatal(err)
	}
	q.stop = q.run(t)
	t.Cleanup(func() { q.stop() })
	return q
}

// run runs the queue until the returned func is called, which waits for
// Run to return.
func (q *queue) run(t *testing.T) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			if err := recv(t, done); err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
}

func (q *queue) counted() []jobs.CallbackOutcome {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.outcomes)
}

// advanceTo moves the fake clock to at, once the queue waits for a timer.
func (q *queue) advanceTo(t *testing.T, at time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatalf("the queue set no timer: %v", err)
	}
	q.clock.Advance(at.Sub(q.clock.Now()))
}

func (q *queue) add(t *testing.T, p jobs.Pending) {
	t.Helper()
	if err := q.Add(p); err != nil {
		t.Fatal(err)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// replies answers the i-th request with codes[i], and the later ones with
// the last code.
func replies(codes ...int) http.HandlerFunc {
	var n atomic.Int64
	return func(w http.ResponseWriter, _ *http.Request) {
		i := min(int(n.Add(1))-1, len(codes)-1)
		w.WriteHeader(codes[i])
	}
}

func pendingTo(url string) jobs.Pending {
	return jobs.Pending{DeliveryID: "d-7", Job: "job-7", Body: []byte(`{"job":"job-7","status":"succeeded"}`),
		URL: url, Deadline: t0.Add(time.Hour)}
}

func TestCallbackQueue_retries_until_delivered_with_one_delivery_id(t *testing.T) {
	r := newReceiver(t, replies(503, 500, 204))
	q := startQueue(t, jobs.CallbackQueueConfig{InitialBackoff: time.Second, MaxBackoff: time.Minute}, jobs.PosterConfig{})
	q.add(t, pendingTo(r.URL+"/hook"))

	for attempt := 1; attempt <= 2; attempt++ {
		p := recv(t, q.store.saved)
		if p.Attempts != attempt || !strings.Contains(p.LastError, "status 50") {
			t.Fatalf("saved attempts %d, last error %q; want %d, a 5xx", p.Attempts, p.LastError, attempt)
		}
		if wait := p.NextAt.Sub(q.clock.Now()); wait < time.Second || wait > time.Minute {
			t.Fatalf("attempt %d is retried after %s, want within [1s, 1m]", attempt, wait)
		}
		q.advanceTo(t, p.NextAt)
	}
	f := recv(t, q.store.finished)
	if f.outcome != jobs.CallbackDelivered || f.err != nil || f.p.Attempts != 3 {
		t.Fatalf("finished %s (%v) after %d attempts, want delivered after 3", f.outcome, f.err, f.p.Attempts)
	}
	got := r.got()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3", len(got))
	}
	for i, req := range got {
		if d := req.header.Get(jobs.HeaderDelivery); d != "d-7" {
			t.Errorf("request %d has delivery id %q, want d-7", i+1, d)
		}
		if !jobs.VerifySignature(secret, req.body, req.header.Get(jobs.HeaderSignature)) {
			t.Errorf("request %d: the signature does not verify", i+1)
		}
	}
	if c := q.counted(); !slices.Equal(c, []jobs.CallbackOutcome{jobs.CallbackRetried, jobs.CallbackRetried, jobs.CallbackDelivered}) {
		t.Fatalf("counted %v", c)
	}
}

func TestCallbackQueue_gives_up_on_a_permanent_error_after_one_call(t *testing.T) {
	r := newReceiver(t, replies(400))
	q := startQueue(t, jobs.CallbackQueueConfig{}, jobs.PosterConfig{})
	q.add(t, pendingTo(r.URL))

	f := recv(t, q.store.finished)
	var ce *jobs.CallbackError
	if f.outcome != jobs.CallbackGivenUp || !errors.As(f.err, &ce) || ce.Status != 400 || f.p.Attempts != 1 {
		t.Fatalf("finished %s (%v) after %d attempts, want given up on the 400 after 1", f.outcome, f.err, f.p.Attempts)
	}
	none(t, q.store.saved, "save")
	if n := len(r.got()); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
	if c := q.counted(); !slices.Equal(c, []jobs.CallbackOutcome{jobs.CallbackGivenUp}) {
		t.Fatalf("counted %v", c)
	}
}

func TestCallbackQueue_gives_up_when_the_next_attempt_would_pass_the_deadline(t *testing.T) {
	r := newReceiver(t, replies(503))
	// A backoff of exactly 4s: the second attempt is at 4s, a third would be at 8s.
	q := startQueue(t, jobs.CallbackQueueConfig{InitialBackoff: 4 * time.Second, MaxBackoff: 4 * time.Second}, jobs.PosterConfig{})
	p := pendingTo(r.URL)
	p.Deadline = t0.Add(5 * time.Second)
	q.add(t, p)

	saved := recv(t, q.store.saved)
	if !saved.NextAt.Equal(t0.Add(4 * time.Second)) {
		t.Fatalf("next attempt at %s, want t0+4s", saved.NextAt)
	}
	q.advanceTo(t, saved.NextAt)
	f := recv(t, q.store.finished)
	var ce *jobs.CallbackError
	if f.outcome != jobs.CallbackGivenUp || !errors.Is(f.err, jobs.ErrCallbackDeadline) || !errors.As(f.err, &ce) ||
		ce.Status != 503 || f.p.Attempts != 2 {
		t.Fatalf("finished %s (%v) after %d attempts, want given up past the deadline after 2", f.outcome, f.err, f.p.Attempts)
	}
	if n := len(r.got()); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}

func TestCallbackQueue_gives_up_a_restored_pending_past_its_deadline_without_a_call(t *testing.T) {
	r := newReceiver(t, replies(200))
	q := startQueue(t, jobs.CallbackQueueConfig{}, jobs.PosterConfig{})
	p := pendingTo(r.URL)
	p.Attempts, p.LastError, p.NextAt, p.Deadline = 5, "callback to http://x/: status 503", t0.Add(-time.Minute), t0.Add(-time.Second)
	q.add(t, p)

	f := recv(t, q.store.finished)
	if f.outcome != jobs.CallbackGivenUp || !errors.Is(f.err, jobs.ErrCallbackDeadline) || f.p.Attempts != 5 ||
		!strings.Contains(f.err.Error(), "status 503") {
		t.Fatalf("finished %s (%v) after %d attempts, want given up past the deadline after 5, with the last error", f.outcome, f.err, f.p.Attempts)
	}
	if n := len(r.got()); n != 0 {
		t.Fatalf("%d requests, want none", n)
	}
}

func TestCallbackQueue_waits_as_long_as_retry_after_asks(t *testing.T) {
	var at []time.Time
	var mu sync.Mutex
	var q *queue
	calls := 0
	r := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		at = append(at, q.clock.Now())
		if calls++; calls == 1 {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	q = startQueue(t, jobs.CallbackQueueConfig{InitialBackoff: time.Second, MaxBackoff: 2 * time.Second}, jobs.PosterConfig{})
	q.add(t, pendingTo(r.URL))

	saved := recv(t, q.store.saved)
	if want := t0.Add(120 * time.Second); !saved.NextAt.Equal(want) {
		t.Fatalf("next attempt at %s, want %s (Retry-After: 120, backoff at most 2s)", saved.NextAt, want)
	}
	q.advanceTo(t, saved.NextAt)
	if f := recv(t, q.store.finished); f.outcome != jobs.CallbackDelivered {
		t.Fatalf("finished %s (%v), want delivered", f.outcome, f.err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(at) != 2 || at[1].Sub(at[0]) < 120*time.Second {
		t.Fatalf("requests at %v, want two, 120s apart", at)
	}
}

func TestCallbackQueue_refuses_a_host_not_allowed_without_a_request(t *testing.T) {
	r := newReceiver(t, replies(200))
	q := startQueue(t, jobs.CallbackQueueConfig{}, jobs.PosterConfig{AllowHost: func(string) bool { return false }})
	q.add(t, pendingTo(r.URL))

	f := recv(t, q.store.finished)
	if f.outcome != jobs.CallbackGivenUp || !errors.Is(f.err, jobs.ErrCallbackRefused) || f.p.Attempts != 1 {
		t.Fatalf("finished %s (%v) after %d attempts, want refused, given up after 1", f.outcome, f.err, f.p.Attempts)
	}
	if n := len(r.got()); n != 0 {
		t.Fatalf("%d requests, want none", n)
	}
}

func TestCallbackQueue_keeps_the_query_secret_and_body_out_of_errors_and_logs(t *testing.T) {
	const token = "tok-5e6f7a"
	r := newReceiver(t, replies(503))
	q := startQueue(t, jobs.CallbackQueueConfig{InitialBackoff: 4 * time.Second, MaxBackoff: 4 * time.Second}, jobs.PosterConfig{})
	p := pendingTo(strings.Replace(r.URL, "http://", "http://user:pw-8b9c@", 1) + "/hook?token=" + token)
	p.Deadline = t0.Add(5 * time.Second)
	q.add(t, p)

	saved := recv(t, q.store.saved)
	q.advanceTo(t, saved.NextAt)
	f := recv(t, q.store.finished)
	q.stop()
	for what, text := range map[string]string{"saved error": saved.LastError, "finish error": f.err.Error(), "log": q.log.String()} {
		for _, leak := range []string{token, "pw-8b9c", string(secret), string(p.Body)} {
			if strings.Contains(text, leak) {
				t.Errorf("the %s holds %q: %s", what, leak, text)
			}
		}
		if !strings.Contains(text, r.URL+"/hook") {
			t.Errorf("the %s does not show %s/hook: %s", what, r.URL, text)
		}
	}
}

func TestCallbackQueue_sends_a_restored_pending_past_due_at_once(t *testing.T) {
	r := newReceiver(t, replies(200))
	q := startQueue(t, jobs.CallbackQueueConfig{}, jobs.PosterConfig{})
	p := pendingTo(r.URL)
	p.Attempts, p.NextAt, p.LastError = 3, t0.Add(-time.Hour), "callback to http://x/: status 503"
	q.add(t, p)

	f := recv(t, q.store.finished) // the fake clock never moves
	if f.outcome != jobs.CallbackDelivered || f.p.Attempts != 4 {
		t.Fatalf("finished %s (%v) after %d attempts, want delivered after 4", f.outcome, f.err, f.p.Attempts)
	}
	if got := r.got(); len(got) != 1 || got[0].header.Get(jobs.HeaderDelivery) != "d-7" {
		t.Fatalf("requests %+v, want one for d-7", got)
	}
}

func TestCallbackQueue_runs_at_most_concurrency_attempts_at_once(t *testing.T) {
	const concurrency, deliveries = 2, 7
	var mu sync.Mutex
	inFlight, most := 0, 0
	entered := make(chan struct{}, deliveries)
	release := make(chan struct{})
	r := newReceiver(t, func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		entered <- struct{}{}
		<-release
		mu.Lock()
		inFlight--
		mu.Unlock()
	})
	q := startQueue(t, jobs.CallbackQueueConfig{Concurrency: concurrency}, jobs.PosterConfig{})
	for i := range deliveries {
		p := pendingTo(r.URL)
		p.DeliveryID = "d-" + string(rune('a'+i))
		q.add(t, p)
	}
	// Each request waits to be released: were the bound not held, more
	// than two would be waiting here at once.
	for range concurrency {
		recv(t, entered)
	}
	for i := range deliveries {
		release <- struct{}{}
		recv(t, q.store.finished)
		if i+concurrency < deliveries {
			recv(t, entered)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if most != concurrency {
		t.Fatalf("%d requests at once at most, want %d", most, concurrency)
	}
	if n := len(r.got()); n != deliveries {
		t.Fatalf("%d requests, want %d", n, deliveries)
	}
}

func TestCallbackQueue_an_attempt_cut_short_by_stopping_is_not_counted(t *testing.T) {
	entered := make(chan struct{}, 2)
	var calls atomic.Int64
	r := newReceiver(t, func(w http.ResponseWriter, req *http.Request) {
		entered <- struct{}{}
		if calls.Add(1) == 1 {
			<-req.Context().Done() // the first request hangs until the queue stops
		}
	})
	q := startQueue(t, jobs.CallbackQueueConfig{}, jobs.PosterConfig{})
	q.add(t, pendingTo(r.URL))
	recv(t, entered)
	q.stop()
	none(t, q.store.saved, "save")
	none(t, q.store.finished, "finish")
	if c := q.counted(); len(c) != 0 {
		t.Fatalf("counted %v, want nothing", c)
	}

	stop := q.run(t) // it is still queued: running again sends it
	defer stop()
	f := recv(t, q.store.finished)
	if f.outcome != jobs.CallbackDelivered || f.p.Attempts != 1 {
		t.Fatalf("finished %s (%v) after %d attempts, want delivered after 1", f.outcome, f.err, f.p.Attempts)
	}
}

func TestCallbackQueue_ignores_a_delivery_already_queued(t *testing.T) {
	r := newReceiver(t, replies(503, 200))
	q := startQueue(t, jobs.CallbackQueueConfig{}, jobs.PosterConfig{})
	q.add(t, pendingTo(r.URL))
	saved := recv(t, q.store.saved)
	q.add(t, pendingTo(r.URL)) // restored again, as it was before the first attempt
	q.advanceTo(t, saved.NextAt)
	if f := recv(t, q.store.finished); f.p.Attempts != 2 {
		t.Fatalf("delivered after %d attempts, want 2", f.p.Attempts)
	}
	if n := len(r.got()); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}

func TestCallbackQueue_backoff_grows_within_its_bounds(t *testing.T) {
	r := newReceiver(t, replies(503))
	q := startQueue(t, jobs.CallbackQueueConfig{InitialBackoff: time.Second, MaxBackoff: 8 * time.Second}, jobs.PosterConfig{})
	q.add(t, pendingTo(r.URL))
	// The n-th interval is 2^(n−1)s capped at 8s, ±50%, clamped to [1s, 8s].
	for _, want := range []struct{ lo, hi time.Duration }{
		{1 * time.Second, 1500 * time.Millisecond},
		{1 * time.Second, 3 * time.Second},
		{2 * time.Second, 6 * time.Second},
		{4 * time.Second, 8 * time.Second},
		{4 * time.Second, 8 * time.Second},
		{4 * time.Second, 8 * time.Second},
	} {
		p := recv(t, q.store.saved)
		if wait := p.NextAt.Sub(q.clock.Now()); wait < want.lo || wait > want.hi+time.Nanosecond {
			t.Fatalf("after attempt %d the wait is %s, want within [%s, %s]", p.Attempts, wait, want.lo, want.hi)
		}
		q.advanceTo(t, p.NextAt)
	}
}

func TestCallbackQueue_Add_rejects_an_incomplete_pending(t *testing.T) {
	q, err := jobs.NewCallbackQueue(jobs.CallbackQueueConfig{Post: newPoster(t, jobs.PosterConfig{}).Post, Store: newStore()})
	if err != nil {
		t.Fatal(err)
	}
	for want, p := range map[string]jobs.Pending{
		"no delivery id": {URL: "http://127.0.0.1/", Deadline: t0},
		"no URL":         {DeliveryID: "d", Deadline: t0},
		"no deadline":    {DeliveryID: "d", URL: "http://127.0.0.1/"},
	} {
		if err := q.Add(p); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Add(%+v) = %v, want an error saying %q", p, err, want)
		}
	}
}

func TestCallbackQueue_runs_once_at_a_time(t *testing.T) {
	r := newReceiver(t, replies(200))
	q := startQueue(t, jobs.CallbackQueueConfig{}, jobs.PosterConfig{})
	q.add(t, pendingTo(r.URL))
	recv(t, q.store.finished) // the first Run is running
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.Run(ctx); err == nil {
		t.Fatal("a second Run ran")
	}
}

func TestNewCallbackQueue_checks_its_config(t *testing.T) {
	post := newPoster(t, jobs.PosterConfig{}).Post
	for want, cfg := range map[string]jobs.CallbackQueueConfig{
		"no Post":                   {Store: newStore()},
		"no store":                  {Post: post},
		"less than initial backoff": {Post: post, Store: newStore(), InitialBackoff: time.Minute, MaxBackoff: time.Second},
	} {
		if _, err := jobs.NewCallbackQueue(cfg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want one saying %q", err, want)
		}
	}
}
