package router

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/jobs"
	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/transport"
)

// stage runs one filter as a Watermill handler.
type stage struct {
	plan   pipeline.StagePlan
	out    *transport.Publisher  // outputs, quarantine, retry tiers (shared by the engine's stages)
	sub    *transport.Subscriber // its input's consumer group (nil outside an engine)
	filter filters.Filter
	slots  *slots
	lanes  map[string]int // input topic → lane of slots
	recs   *records       // the stage's name, tiers and clock
	parks  *parking       // nil unless ordering by key with retry tiers
	dedup  dedupper       // nil unless the stage deduplicates
	watch  *watchdog      // nil without a timeout
	log    *slog.Logger
	client sarama.Client // the engine's, for reads (dedup gap searches)
	rf     int           // replication factor of topics the stage creates
	// observe, if set, gets an Event per hand-out (the status
	// middleware's slot).
	observe Observer
	// results emits job events; nil unless the pipeline keeps results.
	results *emitter
	m       *stageMetrics // records nothing when nil or off
	joined  atomic.Bool   // the stage joined its consumer group once

	// gapMu serializes searches of the output topic for the outputs of
	// records whose publish failed; gapSearched is when the last began.
	gapMu       sync.Mutex
	gapSearched time.Time
}

func newStage(plan pipeline.StagePlan, pub *transport.Publisher, log *slog.Logger) (*stage, error) {
	log = log.With("pipeline", plan.Pipeline, "stage", plan.Name)
	cfg := plan.Config
	cfg.Pipeline, cfg.Stage, cfg.Logger = plan.Pipeline, plan.Name, log
	f, err := plan.Filter.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("stage %s: build filter %q: %w", plan.ID(), plan.Filter.Name, err)
	}
	s := &stage{plan: plan, out: pub, filter: f, log: log, lanes: map[string]int{},
		recs: &records{stage: plan.Name, tiers: map[string]int{}, now: time.Now}}
	var weights []int
	top := 1
	for _, in := range plan.Inputs {
		s.lanes[in.Topic] = len(weights)
		weights = append(weights, in.Weight)
		top = max(top, in.Weight)
	}
	if len(weights) == 0 {
		s.lanes[plan.Input] = 0
		weights = append(weights, 1)
	}
	if len(weights) > 1 {
		// Records due in a retry tier run as if from the heaviest input.
		for _, t := range plan.RetryTopics {
			s.lanes[t] = len(weights)
			weights = append(weights, top)
		}
	}
	for i, t := range plan.RetryTopics {
		s.recs.tiers[t] = i + 1
	}
	s.slots = newSlots(plan.Concurrency, weights)
	if plan.Timeout > 0 {
		s.watch = newWatchdog(plan.Timeout, log)
	}
	if plan.Ordering != pipeline.OrderNone && len(plan.RetryTopics) > 0 {
		s.parks = newParking()
	}
	return s, nil
}

// topics are what the stage's consumer group reads: its inputs, then its
// retry tiers.
func (s *stage) topics() []string {
	return append(stageInputs(s.plan), s.plan.RetryTopics...)
}

// handle is the stage's Watermill handler: record in, filter, records out
// published to the stage's output topic, with the record's job event on a
// pipeline with results (docs/jobs.md).
//
// A stage that deduplicates or parks keys in retry tiers returns once the
// outputs (and the event) are acked, because its middleware acts on the
// published outcome. The others do not wait: the record is settled when
// the broker acks its outputs (see transport.Delivery.SettleLater), so the
// handler's goroutine ends at once instead of sleeping through the produce
// round trip.
func (s *stage) handle(msg *message.Message) ([]*message.Message, error) {
	s.out.Begin()
	defer s.out.End()
	outs, err := s.process(msg)
	if err != nil {
		return nil, err
	}
	d, ok := transport.DeliveryOf(msg.Context())
	if len(outs) == 0 && (s.results == nil || !ok) {
		return nil, nil
	}
	if ok && s.dedup == nil && s.parks == nil {
		return nil, s.publishThenSettle(msg, d, outs)
	}
	return nil, s.publishNow(msg, d, outs)
}

// jobOf is the job id of msg's record: as the filter saw it, else its
// header, else the id the stage derives for a record without one.
func jobOf(msg *message.Message) string {
	if st := stateOf(msg); st != nil && st.built {
		if j := st.in.Headers.Get(filters.HeaderJob); j != "" {
			return j
		}
	}
	if v, ok := transport.LastHeader(consumedOf(msg), filters.HeaderJob); ok && len(v) > 0 {
		return string(v)
	}
	return jobID(msg.Context())
}

// withEvent is what a stage publishes with the outputs of msg's record:
// the outputs, and the record's job event when the pipeline keeps results
// — in their batch, unless the stage writes the pipeline's output topic
// and has outputs: its event carries their places and goes after their
// acks (after is true, and ev is that event).
func (s *stage) withEvent(msg *message.Message, st *handOut, outs []*sarama.ProducerMessage) (recs []*sarama.ProducerMessage, ev jobs.Event, after bool) {
	if s.results == nil || st == nil {
		return outs, ev, false
	}
	ev = s.results.event(msg, st)
	if s.results.output && len(outs) > 0 {
		return outs, ev, true
	}
	return append(outs, s.results.record(ev)), ev, false
}

// publishNow publishes outs and the record's job event, and returns once
// the broker acked them (d is nil for a message that is not a delivery).
// A failure hands the record out again (or fails it for good, when the
// broker refused an output as the record's own fault).
func (s *stage) publishNow(msg *message.Message, d *transport.Delivery, outs []*sarama.ProducerMessage) error {
	st := stateOf(msg)
	recs, ev, after := s.withEvent(msg, st, outs)
	if err := s.out.Send(s.plan.Output, recs); err != nil {
		s.m.producerFailed()
		if d != nil {
			d.SetUncertain(time.Now())
		}
		return s.publishFailed(err)
	}
	if d != nil && len(outs) > 0 {
		s.m.acked(len(outs), d.Record().Timestamp, st)
	}
	if after {
		s.results.located(&ev, outs)
		if err := s.results.sendAfterAck(msg.Context(), ev); err != nil {
			// The outputs are in the output topic: a dedup stage looks
			// for them before it runs the record again.
			if d != nil {
				d.SetUncertain(time.Now())
			}
			return &transient{err: err}
		}
	}
	return nil
}

// A stage's publisher (its own producer) holds back the outputs of its
// records handled while others of the stage are in its handler or ready in
// its windows (transport.Publisher.Coalesce), for at most coalesceWait, or
// until coalesceMax records are held: produce requests then carry more
// records, and a stage at rest (no other record in its handler) sends at
// once.
const (
	coalesceMax  = 512
	coalesceWait = time.Millisecond
)

// publishThenSettle publishes outs (and the record's job event) and
// settles the hand-out when the broker acked them; a failure hands the
// record out again, as a failed synchronous publish does (to be
// quarantined, when the broker refused an output as the record's own
// fault).
func (s *stage) publishThenSettle(msg *message.Message, d *transport.Delivery, outs []*sarama.ProducerMessage) error {
	st, _ := d.Local().(*handOut)
	var recordTime time.Time
	if s.m.enabled() {
		recordTime = d.Record().Timestamp
	}
	n := len(outs)
	recs, ev, after := s.withEvent(msg, st, outs)
	d.SettleLater(true)
	err := s.out.SendAsync(s.plan.Output, recs, func(err error) {
		if err != nil {
			s.m.producerFailed()
		}
		switch err := s.publishFailed(err); {
		case err == nil:
			if n > 0 {
				s.m.acked(n, recordTime, st)
			}
			if after {
				s.results.afterAck(ev, outs, d)
				return
			}
			d.Ack()
		case filters.IsPermanent(err):
			d.Fail(err)
		default:
			s.log.Warn("publishing outputs failed; the record will be handed out again", "err", err)
			d.Redeliver()
		}
	})
	if err != nil {
		d.SettleLater(false)
		return s.publishFailed(err)
	}
	return nil
}

// publishFailed is the error of a record whose outputs could not be
// published (nil if err is): the record's own fault (an output too large
// or invalid: the record fails for good) or not (a broker outage: it is
// handed out again, not as another attempt).
func (s *stage) publishFailed(err error) error {
	if err == nil {
		return nil
	}
	err = fmt.Errorf("pipeline %q stage %q: cannot publish the outputs: %w", s.plan.Pipeline, s.plan.Name, err)
	if transport.RecordFault(err) {
		return filters.Permanent(err)
	}
	return &transient{err: err}
}

// process runs the filter on one record, at most Concurrency at once, and
// returns its outputs as records for the output topic.
func (s *stage) process(msg *message.Message) ([]*sarama.ProducerMessage, error) {
	ctx := msg.Context()
	if d, ok := transport.DeliveryOf(ctx); ok {
		if err := d.Fault(); err != nil {
			return nil, err
		}
	}
	r, _ := transport.RecordFrom(ctx)
	if err := s.slots.acquire(ctx, s.lanes[r.Topic]); err != nil {
		return nil, err
	}
	defer s.slots.release()

	in := input(msg)
	job := in.Headers.Get(filters.HeaderJob)
	if job == "" {
		job = jobID(ctx)
		in.Headers = append(in.Headers, filters.Header{Key: filters.HeaderJob, Value: []byte(job)})
	}
	var start time.Time
	if s.m.enabled() {
		start = time.Now()
	}
	outs, err := withTimeout(s.watch, s.plan.Timeout, msg, func(ctx context.Context) ([]*filters.Message, error) {
		return s.filter.Process(ctx, in)
	})
	if s.m.enabled() {
		s.m.filterDuration.Observe(time.Since(start).Seconds())
	}
	if err != nil {
		s.m.filterFailed(msg, err)
		return nil, fmt.Errorf("pipeline %q stage %q: %w", s.plan.Pipeline, s.plan.Name, err)
	}
	n := 0
	for _, o := range outs {
		if o != nil {
			n++
		}
	}
	if n == 0 && s.m.enabled() {
		s.m.dropped.Inc()
	}
	if s.plan.Output == "" {
		return nil, nil
	}
	res := make([]*sarama.ProducerMessage, 0, n+1) // room for the job event
	if st := stateOf(msg); st != nil {
		st.outputs = n
	}
	attempt := strconv.Itoa(s.recs.attempt(msg))
	var parent string
	if s.results != nil {
		parent = in.Headers.Get(filters.HeaderLineage)
	}
	for _, o := range outs {
		if o == nil {
			continue
		}
		var mark, lineage string
		if s.dedup != nil {
			mark = s.dedupMark(msg, len(res), n)
		}
		if s.results != nil {
			lineage = jobs.ChildLineage(parent, len(res))
		}
		res = append(res, s.output(o, job, attempt, mark, lineage))
	}
	return res, nil
}

// setReady sets the stage's ready gauge.
func (s *stage) setReady(ready bool) { s.m.setReady(ready) }

func (s *stage) close() {
	if s.results != nil {
		s.results.close()
	}
	if s.watch != nil {
		s.watch.close()
	}
	if c, ok := s.filter.(filters.Closer); ok {
		if err := c.Close(); err != nil {
			s.log.Warn("closing filter", "err", err)
		}
	}
}

// dedupper is the stage's view of its deduplication store (dedup.go).
type dedupper interface {
	restore(ctx context.Context, partitions []int32) error
	release(partitions []int32)
	seen(partition int32, key string) bool
	record(partition int32, key string) error
	lastRecorded(partition int32) time.Time
	held() []int32
}

// assigned prepares the partitions a session claims before their records
// run: the keys parked in retry tiers and the dedup keys are restored.
//
// Partitions added to an input since the stage started are added to its own
// topics first (CoPartition); the group leader sees the new partitions
// within a metadata refresh (MetadataRefresh) and rebalances, so that they
// are assigned too.
func (s *stage) assigned(ctx context.Context, client sarama.Client, sess sarama.ConsumerGroupSession) error {
	if _, err := kafkaops.CoPartition(client, s.plan.ID(), stageInputs(s.plan), ownTopics(s.plan), s.rf, s.log); err != nil {
		return err
	}
	ps := claimedPartitions(sess)
	if s.parks != nil {
		if err := s.parks.restore(ctx, client, s.plan.Group, s.plan.RetryTopics, ps); err != nil {
			return err
		}
		n := 0
		for _, p := range ps {
			n += s.parks.parked(p)
		}
		if n > 0 {
			s.log.Info("restored keys parked in retry tiers", "keys", n, "partitions", ps)
		}
	}
	if s.dedup != nil {
		if err := s.dedup.restore(ctx, ps); err != nil {
			return err
		}
		if err := s.recoverDedupGap(ctx, client, ps, time.Time{}); err != nil {
			return err
		}
	}
	return nil
}

// revoked forgets the partitions of a session that ended.
func (s *stage) revoked(sess sarama.ConsumerGroupSession) {
	ps := claimedPartitions(sess)
	if s.parks != nil {
		s.parks.release(ps)
	}
	if s.dedup != nil {
		s.dedup.release(ps)
	}
}

// claimedPartitions are the partition numbers a session claims, of any of
// the stage's topics.
func claimedPartitions(sess sarama.ConsumerGroupSession) []int32 {
	var ps []int32
	for _, parts := range sess.Claims() {
		for _, p := range parts {
			if !slices.Contains(ps, p) {
				ps = append(ps, p)
			}
		}
	}
	slices.Sort(ps)
	return ps
}
