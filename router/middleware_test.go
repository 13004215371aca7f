package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/IBM/sarama/mocks"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/transport"
)

// Unit tests of each middleware on its own, with deliveries made by
// transport.NewDelivery and a Publisher on sarama's mock producer.

var quiet = slog.New(slog.DiscardHandler)

// handOutOf is a message handed out from rec on its attempt-th attempt;
// its settlements go to the returned channel.
func handOutOf(rec *sarama.ConsumerMessage, attempt int) (*message.Message, *transport.Delivery, chan transport.Settlement) {
	settled := make(chan transport.Settlement, 4)
	d := transport.NewDelivery(rec, attempt, func(s transport.Settlement) { settled <- s })
	msg := message.NewMessage(transport.NewMessageID(), rec.Value)
	msg.SetContext(d)
	return msg, d, settled
}

// sent collects what a mock producer was given, in order.
type sent struct {
	mu   sync.Mutex
	msgs []*sarama.ProducerMessage
}

func (s *sent) take() []*sarama.ProducerMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// mockPublisher is a Publisher whose next len(outcomes) records succeed
// (nil) or fail (the error); limit is its Producer.MaxMessageBytes (0:
// sarama's default).
func mockPublisher(t *testing.T, limit int, outcomes ...error) (*transport.Publisher, *sent) {
	t.Helper()
	cfg := transport.NewProducerConfig("")
	if limit > 0 {
		cfg.Producer.MaxMessageBytes = limit
	}
	mp := mocks.NewAsyncProducer(t, cfg)
	got := &sent{}
	for _, err := range outcomes {
		check := func(m *sarama.ProducerMessage) error {
			got.mu.Lock()
			got.msgs = append(got.msgs, m)
			got.mu.Unlock()
			return nil
		}
		if err == nil {
			mp.ExpectInputWithMessageCheckerFunctionAndSucceed(check)
		} else {
			mp.ExpectInputWithMessageCheckerFunctionAndFail(check, err)
		}
	}
	pub := transport.NewPublisherWith(mp, cfg)
	t.Cleanup(func() { pub.Close() })
	return pub, got
}

func headersOf(m *sarama.ProducerMessage) map[string]string {
	h := map[string]string{}
	for _, x := range m.Headers {
		h[string(x.Key)] = string(x.Value)
	}
	return h
}

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// settle turns each outcome into the settlement errors.go documents, and
// leaves a delivery that settles on its outputs' acks alone.
func TestSettle_settles_each_outcome_once(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name  string
		err   error
		later bool
		want  *transport.Settlement
	}{
		{"success acks", nil, false, &transport.Settlement{Acked: true}},
		{"success settled later is left alone", nil, true, nil},
		{"inline retry after its delay", &retryIn{err: boom, delay: 3 * time.Second}, false, &transport.Settlement{Delay: 3 * time.Second}},
		{"not the record's fault: redelivered, same attempt", &transient{err: boom}, false, &transport.Settlement{NotAttempt: true}},
		{"anything else: after the backoff", boom, false, &transport.Settlement{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, d, settled := handOutOf(&sarama.ConsumerMessage{Topic: "in"}, 1)
			h := settleMiddleware(settleConfig{records: &records{now: time.Now}, log: quiet})(func(*message.Message) ([]*message.Message, error) {
				d.SettleLater(tt.later)
				return nil, tt.err
			})
			if _, err := h(msg); err != nil {
				t.Fatalf("settle returned %v; failures are settled and logged, not returned to Watermill", err)
			}
			select {
			case got := <-settled:
				if tt.want == nil || got != *tt.want {
					t.Fatalf("settled %+v, want %+v", got, tt.want)
				}
			default:
				if tt.want != nil {
					t.Fatalf("not settled, want %+v", *tt.want)
				}
			}
		})
	}
	// A message that is not a delivery is Watermill's: its error goes back.
	msg := message.NewMessage("id", nil)
	h := settleMiddleware(settleConfig{records: &records{now: time.Now}, log: quiet})(func(*message.Message) ([]*message.Message, error) {
		return nil, boom
	})
	if _, err := h(msg); !errors.Is(err, boom) {
		t.Fatalf("plain message: settle returned %v, want the error for Watermill to nack", err)
	}
}

// status reports every outcome, with the attempt, the outputs and the time
// taken, and changes nothing.
func TestStatus_reports_every_outcome(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		run  func(msg *message.Message) error
		want Outcome
	}{
		{"done", func(msg *message.Message) error { stateOf(msg).outputs = 3; return nil }, Done},
		{"quarantined", func(msg *message.Message) error { stateOf(msg).quarantined = true; return nil }, Quarantined},
		{"skipped", func(msg *message.Message) error { stateOf(msg).skipped = true; return nil }, Skipped},
		{"retried", func(*message.Message) error { return &retryIn{err: boom, delay: time.Second} }, Retried},
		{"redelivered", func(*message.Message) error { return &transient{err: boom} }, Redelivered},
		{"stopped", func(msg *message.Message) error {
			d, _ := transport.DeliveryOf(msg.Context())
			d.Cancel(nil)
			return context.Canceled
		}, Stopped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []Event
			now := t0
			clock := func() time.Time { now = now.Add(time.Second); return now }
			msg, _, _ := handOutOf(&sarama.ConsumerMessage{Topic: "in", Partition: 2, Offset: 9}, 2)
			h := statusMiddleware(statusConfig{pipeline: "p", stage: "s", records: &records{now: clock},
				observe: func(e Event) { got = append(got, e) }, now: clock})(func(m *message.Message) ([]*message.Message, error) {
				return nil, tt.run(m)
			})
			_, err := h(msg)
			if len(got) != 1 {
				t.Fatalf("%d events, want 1", len(got))
			}
			e := got[0]
			if e.Outcome != tt.want || e.Pipeline != "p" || e.Stage != "s" || e.Attempt != 2 || e.Origin.String() != "in/2/9" ||
				e.Took != time.Second || !errors.Is(e.Err, err) {
				t.Fatalf("event %+v, want outcome %s, attempt 2, origin in/2/9, 1s, the error returned", e, tt.want)
			}
			if tt.want == Done && e.Outputs != 3 {
				t.Fatalf("done with %d outputs, want 3", e.Outputs)
			}
		})
	}
}

// quarantine sends a record that failed for good to the quarantine topic,
// unchanged with its headers in order plus the failure headers, and lets
// the stage go on; other failures pass through; a publish failure is not
// the record's fault; a copy too large goes as an envelope.
func TestQuarantine_moves_records_that_failed_for_good(t *testing.T) {
	rec := &sarama.ConsumerMessage{Topic: "p.in", Partition: 1, Offset: 7, Key: []byte("k"), Value: []byte(`{"n":1}`),
		Headers: []*sarama.RecordHeader{{Key: []byte("tag"), Value: []byte("x")}, {Key: []byte("tag"), Value: []byte("y")},
			{Key: []byte(filters.HeaderJob), Value: []byte("job-1")}}}
	recs := &records{stage: "s", tiers: map[string]int{}, now: fixedClock(t0)}
	boom := errors.New("bad record")
	t.Run("permanent and exhausted", func(t *testing.T) {
		for _, cause := range []error{filters.Permanent(boom), &exhausted{err: boom}} {
			pub, got := mockPublisher(t, 0, nil)
			msg, _, _ := handOutOf(rec, 1)
			h := quarantineMiddleware(quarantineConfig{topic: "p.quarantine", records: recs, pub: pub, log: quiet})(
				func(*message.Message) ([]*message.Message, error) { return nil, cause })
			if _, err := h(msg); err != nil {
				t.Fatalf("%v: returned %v, want nil (the stage goes on)", cause, err)
			}
			q := got.take()
			if len(q) != 1 || q[0].Topic != "p.quarantine" {
				t.Fatalf("%v: sent %d records, want 1 to p.quarantine", cause, len(q))
			}
			var names []string
			for _, h := range q[0].Headers[1:3] {
				names = append(names, string(h.Key)+"="+string(h.Value))
			}
			if strings.Join(names, ",") != "tag=x,tag=y" {
				t.Fatalf("%v: headers %v, want the record's own in order first", cause, names)
			}
			hs := headersOf(q[0])
			if hs[filters.HeaderError] != "bad record" || hs[filters.HeaderStage] != "s" || hs[filters.HeaderOrigin] != "p.in/1/7" ||
				hs[filters.HeaderAttempt] != "1" || hs[filters.HeaderJob] != "job-1" || hs[filters.HeaderLastFailure] != t0.Format(time.RFC3339Nano) {
				t.Fatalf("%v: failure headers %v", cause, hs)
			}
			if !stateOf(msg).quarantined {
				t.Fatalf("%v: not noted as quarantined for the status middleware", cause)
			}
		}
	})
	t.Run("other failures pass through", func(t *testing.T) {
		pub, got := mockPublisher(t, 0)
		for _, cause := range []error{&retryIn{err: boom, delay: time.Second}, &transient{err: boom}, boom} {
			msg, _, _ := handOutOf(rec, 1)
			h := quarantineMiddleware(quarantineConfig{topic: "p.quarantine", records: recs, pub: pub, log: quiet})(
				func(*message.Message) ([]*message.Message, error) { return nil, cause })
			if _, err := h(msg); err != cause {
				t.Fatalf("%T passed as %v", cause, err)
			}
		}
		if n := len(got.take()); n != 0 {
			t.Fatalf("%d records quarantined, want none", n)
		}
	})
	t.Run("no quarantine while stopping", func(t *testing.T) {
		pub, got := mockPublisher(t, 0)
		msg, d, _ := handOutOf(rec, 1)
		d.Cancel(nil)
		h := quarantineMiddleware(quarantineConfig{topic: "p.quarantine", records: recs, pub: pub, log: quiet})(
			func(*message.Message) ([]*message.Message, error) { return nil, filters.Permanent(boom) })
		if _, err := h(msg); err == nil || len(got.take()) != 0 {
			t.Fatalf("stopping: returned %v and quarantined %d; want the error back, nothing quarantined", err, len(got.take()))
		}
	})
	t.Run("publish failure is not the record's fault", func(t *testing.T) {
		pub, _ := mockPublisher(t, 0, sarama.ErrOutOfBrokers)
		msg, _, _ := handOutOf(rec, 1)
		h := quarantineMiddleware(quarantineConfig{topic: "p.quarantine", records: recs, pub: pub, log: quiet})(
			func(*message.Message) ([]*message.Message, error) { return nil, filters.Permanent(boom) })
		var tr *transient
		if _, err := h(msg); !errors.As(err, &tr) {
			t.Fatalf("returned %v, want a transient error (retried, never dropped)", err)
		}
	})
	t.Run("too large: an envelope", func(t *testing.T) {
		big := *rec
		big.Value = []byte(strings.Repeat("x", 200_000))
		pub, got := mockPublisher(t, 100_000, nil)
		msg, _, _ := handOutOf(&big, 1)
		h := quarantineMiddleware(quarantineConfig{topic: "p.quarantine", records: recs, pub: pub, log: quiet})(
			func(*message.Message) ([]*message.Message, error) { return nil, filters.Permanent(boom) })
		if _, err := h(msg); err != nil {
			t.Fatalf("returned %v", err)
		}
		q := got.take()
		if len(q) != 1 || headersOf(q[0])[filters.HeaderTruncated] != "payload=200000 key=1 headers=25" {
			t.Fatalf("sent %d records; want one envelope with millrace-truncated (got %v)", len(q), headersOf(q[0]))
		}
		if v, _ := q[0].Value.Encode(); len(v) != envelopeKeep {
			t.Fatalf("envelope payload %d bytes, want %d", len(v), envelopeKeep)
		}
	})
}

// retry retries inline while a pass has attempts, then moves the record
// to the next tier (pinned to its partition, due after the tier's delay),
// then gives up for the quarantine; what is not its business passes.
func TestRetry_follows_the_policy(t *testing.T) {
	boom := errors.New("flaky")
	policy := pipeline.RetryPlan{Attempts: 3, Tiers: []time.Duration{time.Minute},
		Backoff: pipeline.BackoffPlan{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: 0.5}}
	recs := &records{stage: "s", tiers: map[string]int{"p.s.retry.1": 1}, now: fixedClock(t0)}
	run := func(t *testing.T, rec *sarama.ConsumerMessage, attempt int, pub *transport.Publisher, cause error) error {
		msg, _, _ := handOutOf(rec, attempt)
		h := retryMiddleware(retryConfig{policy: policy, tierTopics: []string{"p.s.retry.1"}, records: recs, pub: pub, log: quiet,
			jitter: func() float64 { return 1 }})(func(*message.Message) ([]*message.Message, error) { return nil, cause })
		_, err := h(msg)
		return err
	}
	in := &sarama.ConsumerMessage{Topic: "p.in", Partition: 3, Offset: 5, Key: []byte("k"), Value: []byte("v")}
	t.Run("inline", func(t *testing.T) {
		pub, _ := mockPublisher(t, 0)
		for pass, want := range map[int]time.Duration{1: 150 * time.Millisecond, 2: 300 * time.Millisecond} {
			var r *retryIn
			if err := run(t, in, pass, pub, boom); !errors.As(err, &r) || r.delay != want {
				t.Fatalf("pass %d: %v, want an inline retry after %s (backoff with +50%% jitter)", pass, err, want)
			}
		}
	})
	t.Run("to the tier", func(t *testing.T) {
		pub, got := mockPublisher(t, 0, nil)
		if err := run(t, in, 3, pub, boom); err != nil {
			t.Fatalf("last inline attempt: %v, want nil (moved to the tier)", err)
		}
		m := got.take()
		if len(m) != 1 || m[0].Topic != "p.s.retry.1" {
			t.Fatalf("sent %v, want one record to p.s.retry.1", m)
		}
		if p, err := transport.NewMurmur2Partitioner("p.s.retry.1").Partition(m[0], 8); err != nil || p != 3 {
			t.Fatalf("tier record goes to partition %d (%v), want the record's own, 3", p, err)
		}
		if h := headersOf(m[0]); h[filters.HeaderRetryAt] != t0.Add(time.Minute).Format(time.RFC3339Nano) || h[filters.HeaderAttempt] != "3" {
			t.Fatalf("tier record headers %v: want due a minute later, attempt 3", h)
		}
	})
	t.Run("exhausted after the last tier", func(t *testing.T) {
		pub, got := mockPublisher(t, 0)
		tiered := &sarama.ConsumerMessage{Topic: "p.s.retry.1", Partition: 3, Offset: 1, Key: []byte("k"), Value: []byte("v"),
			Headers: []*sarama.RecordHeader{{Key: []byte(filters.HeaderAttempt), Value: []byte("3")}}}
		var ex *exhausted
		if err := run(t, tiered, 3, pub, boom); !errors.As(err, &ex) || len(got.take()) != 0 {
			t.Fatalf("attempt 6 of 6: %v, want exhausted and nothing sent", err)
		}
	})
	t.Run("passes what is not a retry", func(t *testing.T) {
		pub, _ := mockPublisher(t, 0)
		for _, cause := range []error{filters.Permanent(boom), &transient{err: boom}} {
			if err := run(t, in, 1, pub, cause); err != cause {
				t.Fatalf("%v came back as %v", cause, err)
			}
		}
	})
}

// fakeStore is a dedup store in memory that can fail to record.
type fakeStore struct {
	keys      map[string]bool
	failWrite error
}

func (f *fakeStore) restore(context.Context, []int32) error { return nil }
func (f *fakeStore) release([]int32)                        {}
func (f *fakeStore) seen(p int32, key string) bool          { return f.keys[fmt.Sprint(p, key)] }
func (f *fakeStore) record(p int32, key string) error {
	if f.failWrite != nil {
		return f.failWrite
	}
	f.keys[fmt.Sprint(p, key)] = true
	return nil
}
func (f *fakeStore) lastRecorded(int32) time.Time { return time.Time{} }
func (f *fakeStore) held() []int32                { return nil }

// dedupe runs a key once: it records the key only after the handler
// succeeded, skips a key it has, and before running a record whose
// outputs may be out already, looks for them.
func TestDedupe_runs_each_key_once_and_records_only_after_success(t *testing.T) {
	key, err := pipeline.CompileKey(".id")
	if err != nil {
		t.Fatal(err)
	}
	plan := &pipeline.DedupPlan{Key: ".id", KeyOf: key}
	store := &fakeStore{keys: map[string]bool{}}
	var searched []time.Time
	mw := dedupeMiddleware(dedupeConfig{plan: plan, store: store, now: fixedClock(t0), log: quiet,
		findPublished: func(_ context.Context, since time.Time) error {
			searched = append(searched, since)
			store.keys[fmt.Sprint(0, "b")] = true // its outputs were found
			return nil
		}})
	calls := 0
	var fail error
	h := mw(func(*message.Message) ([]*message.Message, error) { calls++; return nil, fail })
	rec := func(id string) *sarama.ConsumerMessage {
		return &sarama.ConsumerMessage{Topic: "in", Value: []byte(`{"id":"` + id + `"}`)}
	}

	fail = errors.New("filter failed")
	msg, _, _ := handOutOf(rec("a"), 1)
	if _, err := h(msg); err != fail || store.seen(0, "a") {
		t.Fatalf("failed attempt: %v, recorded %v; want the error and no key", err, store.seen(0, "a"))
	}
	fail = nil
	msg, _, _ = handOutOf(rec("a"), 2)
	if _, err := h(msg); err != nil || !store.seen(0, "a") || stateOf(msg).dedupKey != "a" {
		t.Fatalf("success: %v, recorded %v; want the key recorded after it", err, store.seen(0, "a"))
	}
	msg, _, _ = handOutOf(rec("a"), 1)
	if _, err := h(msg); err != nil || calls != 2 || !stateOf(msg).skipped {
		t.Fatalf("duplicate: %v, handler ran %d times; want it skipped", err, calls)
	}

	store.failWrite = errors.New("changelog down")
	msg, d, _ := handOutOf(rec("b"), 1)
	var tr *transient
	if _, err := h(msg); !errors.As(err, &tr) || !d.Uncertain().Equal(t0) {
		t.Fatalf("key not recorded: %v, uncertain %s; want a transient error and the outputs marked uncertain", err, d.Uncertain())
	}
	store.failWrite = nil
	if _, err := h(msg); err != nil || len(searched) != 1 || !searched[0].Equal(t0) || calls != 3 {
		t.Fatalf("again: %v, searched %v, handler ran %d times; want the outputs found, the record skipped", err, searched, calls)
	}

	msg, _, _ = handOutOf(&sarama.ConsumerMessage{Topic: "in", Value: []byte(`not json`)}, 1)
	if _, err := h(msg); !filters.IsPermanent(err) {
		t.Fatalf("no key can be computed: %v, want a permanent error", err)
	}
}

// A filter call past the stage's timeout is cancelled and fails; a
// panicking filter fails its record with a stack summary.
func TestTimeout_and_recover_around_the_filter_call(t *testing.T) {
	w := newWatchdog(50*time.Millisecond, quiet)
	defer w.close()
	msg, _, _ := handOutOf(&sarama.ConsumerMessage{Topic: "in"}, 1)
	_, err := withTimeout(w, 50*time.Millisecond, msg, func(ctx context.Context) ([]*filters.Message, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	if err == nil || !strings.Contains(err.Error(), "timed out after 50ms") || stopping(msg) {
		t.Fatalf("slow call: %v; want it timed out (and not taken for a stop)", err)
	}
	msg, _, _ = handOutOf(&sarama.ConsumerMessage{Topic: "in"}, 1)
	_, err = withTimeout(nil, 0, msg, func(context.Context) ([]*filters.Message, error) { panic("kaboom") })
	var pe *panicError
	if !errors.As(err, &pe) || pe.stack == "" || !strings.Contains(err.Error(), "kaboom") {
		t.Fatalf("panicking call: %v; want a panic error with a stack summary", err)
	}
}

// A stage grows its record goroutines to 8 KiB at once when it emits job
// events or its filter asks for it (filters.Spec.DeepStack, as jq does).
func TestStage_bigStack(t *testing.T) {
	s := &stage{}
	if s.bigStack() {
		t.Error("a no-op stage without results grows its stack to 8 KiB")
	}
	s.plan.Filter.DeepStack = true
	if !s.bigStack() {
		t.Error("a filter with DeepStack does not get the 8 KiB stack")
	}
	s = &stage{results: &emitter{}}
	if !s.bigStack() {
		t.Error("a stage with job results does not get the 8 KiB stack")
	}
}

// The chain is built in one place, in DESIGN.md's order.
func TestChain_order(t *testing.T) {
	s := &stage{plan: pipeline.StagePlan{Pipeline: "p", Name: "s"}, recs: &records{now: time.Now}, log: quiet}
	if got := chain(s).names(); strings.Join(got, " ") != "settle recoverer quarantine retry" {
		t.Fatalf("chain %v", got)
	}
	s.observe = func(Event) {}
	s.dedup = &fakeStore{}
	s.plan.Dedup = &pipeline.DedupPlan{}
	if got := chain(s).names(); strings.Join(got, " ") != "settle recoverer status quarantine retry dedupe" {
		t.Fatalf("chain with status and dedupe %v", got)
	}
}
