// Package scheduler fires the schedules of pipelines.yaml (`schedules:` of
// a pipeline: cron or every) into their pipelines' input topics, exactly
// once per tick however many processes run it.
//
// # Leader
//
// Every process that runs a Scheduler joins consumer group
// pipeline.SchedulerGroup on the single-partition topic
// pipeline.ScheduleTopic; the member the group assigns partition 0 leads
// and is the only one that fires. Kafka's group coordinator elects it: when
// the leader dies, its session times out and the partition goes to another
// member (the failover takes the session timeout plus a rebalance); a
// leader that stops gracefully leaves the group at once. The sticky
// assignor keeps the leader where it is when members come and go.
//
// # Exactly one record per tick
//
// A tick's job id is a function of the schedule and the tick's scheduled
// time ([TickJobID]), and the leader records each tick in the compacted
// schedule topic, keyed by schedule: before it sends the tick's record,
// "pending" with the input partition the record goes to and that
// partition's end offset; after the broker acknowledged it, "fired". A
// leader that takes over reads the topic; for a pending tick it reads the
// partition from the recorded offset and sends the record only if no
// record of that job id is there. A failover in the middle of a fire
// therefore never makes a second record for a tick, and a failover between
// ticks never repeats one (ticks up to the last recorded one are done).
//
// A leader leads while its group session lasts. One that lost the lead
// without noticing (stopped, or cut off from the coordinator, longer than
// its session) is fenced by the schedule topic itself: before each write
// it checks that the topic's end offset is where its own last read or
// write left it, and stops and starts over from the topic when another
// leader wrote there. Two leaders could both pass that check within one
// round trip; the tick's job id is the tick's, so a stage with `dedup:
// {key: header:millrace-job}` drops such a copy.
//
// # Catch-up and overlap
//
// Ticks that passed while no leader ran (all processes down, or during a
// failover to another process) are fired on takeover by catch_up: none
// fires none of them, latest the last one, all each of them (the last
// max_catch_up); ticks that came due while the same scheduler paused for
// a rebalance are fired. A disabled schedule is recorded as such, so that
// enabled again it starts at its next tick. With
// overlap: skip a tick is skipped — recorded, logged and counted — while
// the schedule's previous job has not finished (its status from the
// pipeline's job results).
package scheduler

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"
	"github.com/jonboulle/clockwork"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/jobs"
	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/transport"
)

// Config is what a [Scheduler] fires, and with what.
type Config struct {
	// Plan holds the schedules (Plan.Schedules(); disabled ones are not
	// fired) and the scheduler's topic, group and timeouts.
	Plan *pipeline.Plan
	// Brokers are where the group member and the job views connect.
	Brokers []string
	// Sarama is the client config the group member's is made from
	// (copied; nil: the plan's, pipeline.Plan.SaramaConfig).
	Sarama *sarama.Config
	// Client reads the schedule topic and the inputs' offsets; Publisher
	// sends the records and the schedules' states, with an idempotent
	// producer (transport.NewProducerConfig), which the fencing of the
	// leader relies on. The caller closes both after Run returned.
	Client    sarama.Client
	Publisher *transport.Publisher
	// Clock decides when ticks are due (nil: the real clock). Records and
	// job events carry the real time they were sent.
	Clock clockwork.Clock
	// Log gets a line per fire, skip and change of leader (nil: none).
	Log *slog.Logger
	// Metrics counts fires and skips (nil: none).
	Metrics *Metrics
	// Process names this process in the schedule topic and to `millrace
	// schedules ls` (default: host name/pid).
	Process string
}

// Scheduler fires a plan's schedules while its process leads (see the
// package documentation).
type Scheduler struct {
	cfg       Config
	schedules []pipeline.SchedulePlan // enabled and disabled: a disabled one is recorded as such

	// fence is the end offset the schedule topic had after this leader's
	// last read or write; -1 before.
	fence int64
	// run is this scheduler's State.Run.
	run string
	// gen is the group generation this process leads in (while it does).
	gen int32

	mu      sync.Mutex
	views   map[string]*jobs.View // by pipeline, for overlap: skip
	clients []sarama.Client       // the views', closed after them
}

// Process is this process as the scheduler names it by default: "host/pid".
func Process() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}

// New returns a scheduler of cfg's schedules; nil when the plan has no
// enabled one (there is nothing to fire).
func New(cfg Config) (*Scheduler, error) {
	if cfg.Plan == nil || cfg.Client == nil || cfg.Publisher == nil || len(cfg.Brokers) == 0 {
		return nil, errors.New("scheduler: a plan, brokers, a client and a publisher are needed")
	}
	all := cfg.Plan.Schedules()
	if len(cfg.Plan.EnabledSchedules()) == 0 {
		return nil, nil
	}
	if cfg.Sarama == nil {
		var err error
		if cfg.Sarama, err = cfg.Plan.SaramaConfig(); err != nil {
			return nil, err
		}
	}
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	cfg.Log = cfg.Log.With("component", "scheduler")
	if cfg.Process == "" {
		cfg.Process = Process()
	}
	return &Scheduler{cfg: cfg, schedules: all, views: map[string]*jobs.View{}, fence: -1,
		run: uuid.NewString()[:8]}, nil
}

// pipeline is sp's pipeline.
func (s *Scheduler) pipeline(sp *pipeline.SchedulePlan) *pipeline.PipelinePlan {
	pp, _ := s.cfg.Plan.Pipeline(sp.Pipeline) // the plan's own schedule: its pipeline is there
	return pp
}

// processMark separates a member's client id from the process it names:
// the client id of a scheduler group member is the plan's, processMark and
// the process ("millrace.scheduler.host/1234"), so that `millrace
// schedules ls` can tell which process leads. (The member's user data, the
// other place for it, belongs to the sticky assignor.) Client-id quotas of
// the brokers, if any, see each process apart.
const processMark = ".scheduler."

// groupConfig is the config of the scheduler's group member: the sticky
// assignor, the plan's group timeouts (a heartbeat every sixth of the
// session, so that a leader's death is noticed soon after its session
// ended), no offsets committed, the process in the client id.
func (s *Scheduler) groupConfig() *sarama.Config {
	c := *s.cfg.Sarama
	c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	sched := s.cfg.Plan.Scheduler
	transport.SetGroupTimeouts(&c, cmp.Or(sched.SessionTimeout, transport.DefaultSessionTimeout),
		cmp.Or(sched.RebalanceTimeout, transport.DefaultRebalanceTimeout))
	c.Consumer.Group.Heartbeat.Interval = max(c.Consumer.Group.Session.Timeout/6, 100*time.Millisecond)
	c.Consumer.Offsets.Initial = sarama.OffsetNewest
	c.Consumer.Offsets.AutoCommit.Enable = false
	c.ClientID += processMark + s.cfg.Process
	return &c
}

// Run takes part in the leader election until ctx ends, and fires the
// schedules while this process leads. It returns nil when ctx ends, or
// the error that kept it from joining the group.
func (s *Scheduler) Run(ctx context.Context) error {
	defer s.closeViews()
	group, err := sarama.NewConsumerGroup(s.cfg.Brokers, s.cfg.Plan.Scheduler.Group, s.groupConfig())
	if err != nil {
		return fmt.Errorf("scheduler: join group %s: %w", s.cfg.Plan.Scheduler.Group, err)
	}
	defer group.Close()
	go func() {
		for err := range group.Errors() {
			s.cfg.Log.Warn("consumer group", "group", s.cfg.Plan.Scheduler.Group, "err", err)
		}
	}()
	for ctx.Err() == nil {
		err := group.Consume(ctx, []string{s.cfg.Plan.Scheduler.Topic}, handler{s})
		switch {
		case errors.Is(err, sarama.ErrClosedConsumerGroup):
			return nil
		case err != nil && ctx.Err() == nil:
			s.cfg.Log.Warn("leader election: consume; trying again", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

// handler is the scheduler's consumer group handler: the member given
// partition 0 leads until its session ends (any rebalance ends it; the
// sticky assignor gives the partition back to the same member if it is
// still there, which then leads again).
type handler struct{ s *Scheduler }

// Setup says, once per session, which role this process has.
func (h handler) Setup(sess sarama.ConsumerGroupSession) error {
	if !slices.Contains(sess.Claims()[h.s.cfg.Plan.Scheduler.Topic], 0) {
		h.s.cfg.Log.Info("standing by: another process leads the scheduler group", "group", h.s.cfg.Plan.Scheduler.Group,
			"generation", sess.GenerationID())
	}
	return nil
}

func (handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	go func() {
		for range claim.Messages() { // the leader's own states: it reads them at takeover
		}
	}()
	if claim.Partition() == 0 {
		h.s.lead(sess.Context(), sess.GenerationID())
	}
	<-sess.Context().Done()
	return nil
}

// retryWait bounds the backoff between attempts of a leader whose fire
// failed (Kafka unavailable): it starts over, from reading the schedule
// topic, after 250 ms doubling to this.
const retryWait = 10 * time.Second

// errFenced is writeState's error when a leader of an older generation of
// the group wrote to the schedule topic since this leader last read or
// wrote it (one that lost the lead without noticing yet): this leader
// reads the topic again and goes on.
var errFenced = errors.New("a leader of an older generation of the group wrote to the schedule topic")

// errStale is writeState's error when a leader of a newer generation of
// the group wrote to the schedule topic: this process lost the lead
// without noticing (it was stopped, or cut off from the coordinator), and
// fires nothing more until the group tells it so.
var errStale = errors.New("a leader of a newer generation of the group wrote to the schedule topic: this process no longer leads")

// leaderKey is the key of the record a leader writes to the schedule topic
// when it takes over (no schedule's id: those hold a '/'): it moves the
// topic's end, so that a leader of an older generation still firing is
// fenced at its next write.
const leaderKey = "leader"

// lead fires the schedules until ctx (the group session of generation
// gen) ends, starting over after an error with backoff.
func (s *Scheduler) lead(ctx context.Context, gen int32) {
	s.cfg.Metrics.setLeading(true)
	defer s.cfg.Metrics.setLeading(false)
	s.gen = gen
	log := s.cfg.Log
	log.Info("this process leads: it fires the schedules", "process", s.cfg.Process, "generation", gen,
		"schedules", len(s.schedules))
	wait := 250 * time.Millisecond
	for {
		err := s.leadOnce(ctx)
		if ctx.Err() != nil {
			log.Info("no longer leading (the group rebalanced or the process stops)")
			return
		}
		if errors.Is(err, errStale) {
			s.cfg.Metrics.setLeading(false)
			log.Warn("another process leads now; firing nothing until the group says so", "err", err)
			<-ctx.Done()
			log.Info("no longer leading (the group rebalanced or the process stops)")
			return
		}
		log.Warn("firing stopped; starting over from the schedule topic", "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, retryWait)
	}
}

// run is one schedule as the leader fires it.
type run struct {
	plan  *pipeline.SchedulePlan
	state State // the last written (zero: none)
	// last is the last tick handled (fired, skipped or passed over by
	// catch-up); job the last job fired.
	last time.Time
	job  string
	// next is the next tick after last; zero for a disabled schedule, or
	// a spec with no tick left.
	next time.Time
}

// due is when r's next tick is fired: its scheduled time plus its jitter.
func (r *run) due() time.Time { return r.next.Add(jitter(r.plan, r.next)) }

// jitter is how long after tick t its record is sent: a fraction of the
// schedule's jitter that is a function of the schedule and t, so that
// every leader waits the same.
func jitter(sp *pipeline.SchedulePlan, t time.Time) time.Duration {
	if sp.Jitter <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(sp.ID()))
	h.Write([]byte(t.UTC().Format(time.RFC3339Nano)))
	return time.Duration(h.Sum64() % uint64(sp.Jitter))
}

// maxWait bounds one wait for a tick: the wait is measured on the
// monotonic clock, which a suspended machine or a step of the wall clock
// leaves behind, so the leader looks at the time again at least this
// often.
const maxWait = time.Minute

// leadOnce reads the schedules' states, settles a tick a previous leader
// left pending, catches up what passed while no leader ran, then fires
// each tick when it is due, until ctx ends or a fire fails.
func (s *Scheduler) leadOnce(ctx context.Context) error {
	topic := s.cfg.Plan.Scheduler.Topic
	if parts, err := s.cfg.Client.Partitions(topic); err != nil {
		return fmt.Errorf("schedule topic %s: %w", topic, err)
	} else if len(parts) != 1 {
		return fmt.Errorf("schedule topic %s has %d partitions: it must have 1 (one leader, one order of ticks); "+
			"delete it or name another in the file's scheduler: block", topic, len(parts))
	}
	states, end, err := readStates(ctx, s.cfg.Client, topic)
	if err != nil {
		return err
	}
	s.fence = end
	ids := make([]string, len(s.schedules))
	for i := range s.schedules {
		ids[i] = s.schedules[i].ID()
	}
	if err := s.write(ctx, leaderKey, State{State: StateLeader, Schedules: ids}); err != nil {
		return err
	}
	var foreign []string
	for id, st := range states {
		if id != leaderKey && !slices.Contains(ids, id) && st.State != StateDisabled {
			foreign = append(foreign, id)
		}
	}
	if len(foreign) > 0 {
		slices.Sort(foreign)
		s.cfg.Log.Warn("the schedule topic holds schedules this pipelines file does not have: if another file's processes "+
			"share this scheduler group, only the leader's file's schedules fire; give each file its own scheduler: "+
			"{group, topic}", "group", s.cfg.Plan.Scheduler.Group, "topic", topic, "schedules", foreign)
	}
	now := s.cfg.Clock.Now()
	runs := make([]*run, len(s.schedules))
	for i := range s.schedules {
		sp := &s.schedules[i]
		r := &run{plan: sp}
		runs[i] = r
		st, ok := states[sp.ID()]
		if ok {
			r.state, r.last, r.job = st, st.Tick, st.Job
		}
		switch {
		case !sp.Enabled:
			// Recorded, so that when it is enabled again the ticks it
			// passed while disabled are not taken for missed ones.
			if st.State != StateDisabled {
				if err := s.writeState(ctx, r, State{Tick: now, State: StateDisabled, Job: r.job}); err != nil {
					return err
				}
			}
			continue
		case !ok || st.State == StateDisabled:
			r.next = sp.Timing.Next(now) // new, or enabled again: it starts at its next tick
			continue
		case st.State == StatePending:
			if err := s.settle(ctx, r); err != nil {
				return err
			}
		}
		r.next = sp.Timing.Next(r.last)
		// Ticks since this scheduler's own last record passed in a
		// rebalance or a retry of it: they are due, not missed.
		missed := st.Run != s.run
		if err := s.handle(ctx, r, now, missed); err != nil {
			return err
		}
	}
	for {
		var first *run
		for _, r := range runs {
			if !r.next.IsZero() && (first == nil || r.due().Before(first.due())) {
				first = r
			}
		}
		if first == nil {
			<-ctx.Done() // no schedule has a tick left
			return ctx.Err()
		}
		if wait := first.due().Sub(s.cfg.Clock.Now()); wait > 0 {
			t := s.cfg.Clock.NewTimer(min(wait, maxWait))
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.Chan():
			}
			continue
		}
		now := s.cfg.Clock.Now()
		for _, r := range runs {
			if r.next.IsZero() || r.due().After(now) {
				continue
			}
			if err := s.handle(ctx, r, now, false); err != nil {
				return err
			}
		}
	}
}

// maxTickScan bounds how many ticks ticksUpTo steps through: a year of a
// schedule firing every minute.
const maxTickScan = 600_000

// ticksUpTo returns r's ticks from r.next up to now: the last
// max(max_catch_up, 1) of them, and how many more there were (about as
// many, when there were more than maxTickScan).
func (r *run) ticksUpTo(now time.Time) (ticks []time.Time, dropped int) {
	keep := 1
	if r.plan.CatchUp == pipeline.CatchUpAll {
		keep = max(r.plan.MaxCatchUp, 1)
	}
	t, n := r.next, 0
	for ; !t.IsZero() && !t.After(now); t = r.plan.Timing.Next(t) {
		if n++; n == maxTickScan {
			// Too many to step through (every: 1s for weeks): jump to
			// the last keep+1 periods before now, as long as the first
			// gap says a period is.
			second := r.plan.Timing.Next(r.next)
			period := second.Sub(r.next)
			jump := r.plan.Timing.Next(now.Add(-time.Duration(keep+1) * period))
			if !jump.After(t) {
				break
			}
			dropped += int(jump.Sub(t) / period)
			t = jump
		}
		ticks = append(ticks, t)
		if len(ticks) > keep {
			ticks = ticks[1:]
			dropped++
		}
	}
	return ticks, dropped
}

// handle fires r's ticks that came due by now. missed says they passed
// while no process led (a takeover after an outage or another process's
// death): then catch_up says which to fire. Otherwise the last of them is
// the current tick, and the ones before it (after a stall) are fired as
// catch_up says too, but for none and latest the current one is fired.
func (s *Scheduler) handle(ctx context.Context, r *run, now time.Time, missed bool) error {
	ticks, dropped := r.ticksUpTo(now)
	if len(ticks) == 0 {
		return nil
	}
	sp := r.plan
	fire := ticks
	switch {
	case sp.CatchUp == pipeline.CatchUpAll:
	case missed && sp.CatchUp == pipeline.CatchUpNone:
		fire = nil
	default: // latest, or the current tick
		fire = ticks[len(ticks)-1:]
	}
	last := ticks[len(ticks)-1]
	if passed := dropped + len(ticks) - len(fire); passed > 0 {
		why := "late: the leader stalled or was busy"
		if missed {
			why = "missed while no process led"
		}
		s.cfg.Log.Info("ticks passed over: "+why, "schedule", sp.ID(), "ticks", passed, "catch_up", sp.CatchUp,
			"last", sp.ScheduledTime(last))
		s.cfg.Metrics.skip(sp, reasonCatchUp, passed)
		if len(fire) == 0 {
			// Recorded, so that the next takeover does not pass them over
			// (and count them) again.
			if err := s.writeState(ctx, r, State{Tick: last, State: StateSkipped, Job: r.job}); err != nil {
				return err
			}
		}
	}
	for _, t := range fire {
		if err := ctx.Err(); err != nil {
			return err // no longer leading: the next leader fires the rest
		}
		if err := s.fire(ctx, r, t); err != nil {
			return err
		}
	}
	r.last = last
	r.next = sp.Timing.Next(r.last)
	return nil
}

// TickJobID is the job id of schedule sp's tick at t: a name-based UUID
// (RFC 9562 §5.5, SHA-1) of the schedule's id and the tick's instant, the
// same in every process.
func TickJobID(sp *pipeline.SchedulePlan, t time.Time) string {
	return uuid.NewSHA1(tickSpace, []byte(sp.ID()+"\x00"+t.UTC().Format(time.RFC3339Nano))).String()
}

// tickSpace is the UUID namespace of the ticks' job ids.
var tickSpace = uuid.MustParse("6f1f1d2e-5b55-4c1e-9a55-7c3b2f0d8e41")

// programError is the error of a schedule's payload or key program.
type programError struct{ err error }

func (e programError) Error() string { return e.err.Error() }
func (e programError) Unwrap() error { return e.err }

// fire fires r's tick t: skips it when the previous job still runs
// (overlap: skip), else records it pending, sends its record and records
// it fired.
func (s *Scheduler) fire(ctx context.Context, r *run, t time.Time) error {
	sp := r.plan
	log := s.cfg.Log.With("schedule", sp.ID(), "scheduled_time", sp.ScheduledTime(t))
	if sp.Overlap == pipeline.OverlapSkip && r.job != "" {
		running, err := s.running(ctx, sp.Pipeline, r.job)
		if err != nil {
			return fmt.Errorf("schedule %s: is job %s still running: %w", sp.ID(), r.job, err)
		}
		if running {
			if err := s.writeState(ctx, r, State{Tick: t, State: StateSkipped, Job: r.job}); err != nil {
				return err
			}
			log.Warn("tick skipped: the previous job has not finished (overlap: skip; see millrace jobs status ID)", "job", r.job)
			s.cfg.Metrics.skip(sp, reasonOverlap, 1)
			r.last = t
			return nil
		}
	}
	id := TickJobID(sp, t)
	input := s.pipeline(sp).Input
	parts, err := s.cfg.Client.Partitions(input)
	if err != nil {
		return fmt.Errorf("schedule %s: partitions of %s: %w", sp.ID(), input, err)
	}
	rec, err := Record(sp, input, int32(len(parts)), id, t)
	if err != nil {
		// The program failed for this tick (validation ran it on another):
		// nothing to send. Recorded, so that no leader tries it again.
		log.Error("tick skipped: its program failed", "err", err)
		s.cfg.Metrics.skip(sp, reasonProgram, 1)
		r.last = t
		return s.writeState(ctx, r, State{Tick: t, State: StateSkipped, Job: r.job})
	}
	part := partitionOf(rec)
	end, err := kafkaops.GetOffset(ctx, s.cfg.Client, input, part, sarama.OffsetNewest)
	if err != nil {
		return fmt.Errorf("schedule %s: end of %s/%d: %w", sp.ID(), input, part, err)
	}
	pending := State{Tick: t, State: StatePending, Job: id, Topic: input, Partition: part, Offset: end}
	if err := s.writeState(ctx, r, pending); err != nil {
		return err
	}
	if err := s.send(sp, rec, id); err != nil {
		return fmt.Errorf("schedule %s: send the tick's record: %w", sp.ID(), err)
	}
	if err := s.writeState(ctx, r, State{Tick: t, State: StateFired, Job: id}); err != nil {
		return err
	}
	r.last, r.job = t, id
	s.cfg.Metrics.fired(sp, t)
	log.Info("fired", "job", id, "topic", input, "partition", part)
	return nil
}

// settle finishes the fire of r's pending tick that a previous leader
// began: it reads the partition the record went to from the recorded
// offset, sends the record if it is not there, and records the tick fired.
func (s *Scheduler) settle(ctx context.Context, r *run) error {
	st, sp := r.state, r.plan
	topic := cmp.Or(st.Topic, s.pipeline(sp).Input)
	log := s.cfg.Log.With("schedule", sp.ID(), "scheduled_time", sp.ScheduledTime(st.Tick), "job", st.Job)
	found, err := s.sent(ctx, topic, st)
	if err != nil {
		return fmt.Errorf("schedule %s: look for the pending tick's record in %s/%d: %w", sp.ID(), topic, st.Partition, err)
	}
	if found {
		log.Info("the previous leader sent the pending tick's record; recording it fired")
	} else {
		input := s.pipeline(sp).Input
		parts, err := s.cfg.Client.Partitions(input)
		if err != nil {
			return fmt.Errorf("schedule %s: partitions of %s: %w", sp.ID(), input, err)
		}
		rec, err := Record(sp, input, int32(len(parts)), st.Job, st.Tick)
		if err != nil {
			return err // it was made once, by the same program
		}
		if input == st.Topic && st.Partition < int32(len(parts)) {
			rec.Key = transport.Pin(rec.Key, st.Partition)
		}
		if err := s.send(sp, rec, st.Job); err != nil {
			return fmt.Errorf("schedule %s: send the pending tick's record: %w", sp.ID(), err)
		}
		log.Info("sent the pending tick's record the previous leader had not sent")
		s.cfg.Metrics.fired(sp, st.Tick)
	}
	if err := s.writeState(ctx, r, State{Tick: st.Tick, State: StateFired, Job: st.Job}); err != nil {
		return err
	}
	r.last, r.job = st.Tick, st.Job
	return nil
}

// sent reports whether the record of pending tick st is in topic, from
// the recorded offset of its partition on. A topic or partition that is
// gone (the pipeline's input was renamed) holds none.
func (s *Scheduler) sent(ctx context.Context, topic string, st State) (bool, error) {
	parts, err := s.cfg.Client.Partitions(topic)
	if errors.Is(err, sarama.ErrUnknownTopicOrPartition) || err == nil && !slices.Contains(parts, st.Partition) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	end, err := kafkaops.GetOffset(ctx, s.cfg.Client, topic, st.Partition, sarama.OffsetNewest)
	if err != nil {
		return false, err
	}
	found := false
	err = kafkaops.FetchRange(ctx, s.cfg.Client, topic, st.Partition, st.Offset, end, func(m *sarama.ConsumerMessage) {
		if v, ok := transport.LastHeader(m, filters.HeaderJob); ok && string(v) == st.Job {
			found = true
		}
	})
	return found, err
}

// writeState records st as r's state (see [Scheduler.write]).
func (s *Scheduler) writeState(ctx context.Context, r *run, st State) error {
	if err := s.write(ctx, r.plan.ID(), st); err != nil {
		return fmt.Errorf("schedule %s: %w", r.plan.ID(), err)
	}
	r.state = st
	return nil
}

// write writes st under key to the schedule topic, once the topic's end
// is still where this leader left it, and waits for the broker's ack. The
// check fences a leader that lost the lead without noticing (stopped, or
// cut off from the group coordinator, for longer than its session): the
// leader that took over wrote to the topic (at least its takeover
// record, of a newer group generation), so the old one's next write fails
// with errStale and it stops. When the records written meanwhile are of
// an older generation (such an old leader's), the error is errFenced:
// this leader reads the topic again and goes on. Two leaders can still
// both pass the check within one round trip; each tick's job id is its
// own, so a dedup stage on header:millrace-job drops what that lets
// through.
func (s *Scheduler) write(ctx context.Context, key string, st State) error {
	topic := s.cfg.Plan.Scheduler.Topic
	end, err := kafkaops.GetOffset(ctx, s.cfg.Client, topic, 0, sarama.OffsetNewest)
	if err != nil {
		return fmt.Errorf("end of %s: %w", topic, err)
	}
	if end != s.fence {
		newer := int32(-1)
		err := kafkaops.FetchRange(ctx, s.cfg.Client, topic, 0, s.fence, end, func(m *sarama.ConsumerMessage) {
			var other State
			if json.Unmarshal(m.Value, &other) == nil && other.Generation > s.gen {
				newer = max(newer, other.Generation)
			}
		})
		switch {
		case err != nil:
			return fmt.Errorf("read what others wrote to %s: %w", topic, err)
		case newer >= 0:
			return fmt.Errorf("%w (generation %d, this process's %d)", errStale, newer, s.gen)
		}
		return fmt.Errorf("%w (its end is %d, this leader left it at %d)", errFenced, end, s.fence)
	}
	st.Tick, st.At, st.By, st.Run, st.Generation = st.Tick.UTC(), time.Now().UTC(), s.cfg.Process, s.run, s.gen
	// The publisher's producer is idempotent: a write the client retries
	// (the broker applied it, its answer was lost) is in the topic once,
	// at the offset returned, so the fence is the end. A second copy would
	// move the fence past another leader's write made in between.
	m := &sarama.ProducerMessage{Topic: topic,
		Key: transport.Pin(sarama.StringEncoder(key), 0), Value: sarama.ByteEncoder(st.marshal())}
	if err := s.cfg.Publisher.Send(topic, []*sarama.ProducerMessage{m}); err != nil {
		return fmt.Errorf("record its state in %s: %w", topic, err)
	}
	s.fence = m.Offset + 1
	return nil
}

// Record is the input record of schedule sp's tick at t, with job id id,
// for topic input of the given partition count: the value and key its
// programs make (pipeline.SchedulePlan.Record), the job, schedule and
// scheduled time headers; pinned to the partition its key (else its job
// id) hashes to, as the murmur2 partitioner would place it, so that the
// partition is known before it is sent. Errors are the programs'.
func Record(sp *pipeline.SchedulePlan, input string, partitions int32, id string, t time.Time) (*sarama.ProducerMessage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), programTimeout)
	defer cancel()
	key, value, err := sp.Record(ctx, t)
	if err != nil {
		return nil, err
	}
	rec := &sarama.ProducerMessage{Topic: input, Value: sarama.ByteEncoder(value),
		Headers: []sarama.RecordHeader{
			{Key: []byte(filters.HeaderJob), Value: []byte(id)},
			{Key: []byte(filters.HeaderSchedule), Value: []byte(sp.ID())},
			{Key: []byte(filters.HeaderScheduledTime), Value: []byte(sp.ScheduledTime(t))},
		}}
	hash := key
	var k sarama.Encoder
	if key != nil {
		k = sarama.ByteEncoder(key)
	} else {
		hash = []byte(id)
	}
	rec.Key = transport.Pin(k, transport.PartitionOf(hash, partitions))
	return rec, nil
}

// programTimeout bounds one run of a schedule's payload and key programs.
const programTimeout = 5 * time.Second

// partitionOf is the partition a record made by Record is pinned to.
func partitionOf(rec *sarama.ProducerMessage) int32 { return transport.PinnedPartition(rec.Key) }

// send sends a tick's record and, on a pipeline with results, its job's
// accepted event.
func (s *Scheduler) send(sp *pipeline.SchedulePlan, rec *sarama.ProducerMessage, id string) error {
	return send(s.cfg.Publisher, s.cfg.Log, s.pipeline(sp), rec, id)
}

// send sends rec, a record of pipeline pp's job id, and on a pipeline with
// results the job's accepted event, and waits for the broker's acks. The
// record decides: a failed accepted event is logged (the job's status
// then starts with its first stage).
func send(pub *transport.Publisher, log *slog.Logger, pp *pipeline.PipelinePlan, rec *sarama.ProducerMessage, id string) error {
	var evErr error
	var wg sync.WaitGroup
	if pp.Results != nil {
		ev := jobs.AcceptedEvent(id, time.Now(), rec.Headers).Marshal()
		wg.Add(1)
		if err := pub.SendAsync(pp.Results.EventsTopic, []*sarama.ProducerMessage{{Topic: pp.Results.EventsTopic,
			Key: sarama.StringEncoder(id), Value: sarama.ByteEncoder(ev)}}, func(err error) { evErr = err; wg.Done() }); err != nil {
			evErr = err
			wg.Done()
		}
	}
	err := pub.Send(rec.Topic, []*sarama.ProducerMessage{rec})
	wg.Wait()
	if evErr != nil && err == nil {
		log.Warn("a fired job's accepted event was not written; its status starts with its first stage",
			"pipeline", pp.Name, "job", id, "err", evErr)
	}
	return err
}

// running reports whether job id of pipeline p is still running: known to
// the pipeline's job results and not finished. A job the results do not
// know (it finished longer than results.keep ago) is not running.
func (s *Scheduler) running(ctx context.Context, p, id string) (bool, error) {
	v, err := s.view(ctx, p)
	if err != nil {
		return false, err
	}
	if err := v.Sync(ctx, id); err != nil {
		return false, err
	}
	st, err := v.StatusOf(ctx, id)
	if err != nil {
		return false, err
	}
	return st.State != jobs.StateUnknown && !st.State.Finished(), nil
}

// view is the view of pipeline p's job events, opened on first use and
// kept, following them, until Run returns: a later leadership of this
// process finds it caught up.
func (s *Scheduler) view(ctx context.Context, p string) (*jobs.View, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := s.views[p]; v != nil {
		return v, nil
	}
	pp, err := s.cfg.Plan.Pipeline(p)
	if err != nil {
		return nil, err
	}
	if pp.Results == nil {
		return nil, fmt.Errorf("pipeline %s keeps no results", p)
	}
	c := *s.cfg.Sarama
	c.Consumer.MaxWaitTime = 100 * time.Millisecond
	client, err := sarama.NewClient(s.cfg.Brokers, &c)
	if err != nil {
		return nil, err
	}
	src := jobs.Source{Shape: *jobs.ShapeOf(*pp), Topic: pp.Results.EventsTopic, Keep: pp.Results.Keep}
	// The view outlives this leadership (ctx): it is closed by Run.
	v, err := jobs.NewView(context.WithoutCancel(ctx), client, jobs.ViewConfig{Source: src, Follow: true,
		Compact: time.Minute, Offsets: s.cfg.Client, Log: s.cfg.Log})
	if err != nil {
		client.Close()
		return nil, err
	}
	s.views[p] = v
	s.clients = append(s.clients, client)
	return v, nil
}

func (s *Scheduler) closeViews() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.views {
		v.Close()
	}
	for _, c := range s.clients {
		c.Close()
	}
	s.views, s.clients = map[string]*jobs.View{}, nil
}
