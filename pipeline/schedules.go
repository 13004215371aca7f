package pipeline

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	// Time zones load from the binary when the machine or container image
	// has no zoneinfo database (distroless and scratch images have none):
	// a schedule's timezone must not depend on where it runs.
	_ "time/tzdata"

	"github.com/itchyny/gojq"

	"github.com/millrace/millrace/internal/exactjson"
	"github.com/millrace/millrace/internal/jqkey"
	"github.com/millrace/millrace/internal/schedtime"
)

// Overlap says whether a schedule fires while its previous job still runs.
type Overlap string

// Overlap policies.
const (
	// OverlapSkip skips a tick while the previous job from the same
	// schedule still runs (its status is in the pipeline's results).
	OverlapSkip Overlap = "skip"
	// OverlapAllow fires every tick.
	OverlapAllow Overlap = "allow"
)

// CatchUp says what happens to the ticks of a schedule missed while no
// scheduler ran (all were down, or the leader changed).
type CatchUp string

// Catch-up policies.
const (
	// CatchUpNone skips missed ticks: the next fire is the next tick.
	CatchUpNone CatchUp = "none"
	// CatchUpLatest fires the latest missed tick, once.
	CatchUpLatest CatchUp = "latest"
	// CatchUpAll fires each missed tick, up to the latest MaxCatchUp of
	// them.
	CatchUpAll CatchUp = "all"
)

// Defaults of a schedule.
const (
	// DefaultSchedulePayload is the payload of a schedule that sets none:
	// {"schedule": name, "scheduled_time": the tick}.
	DefaultSchedulePayload = `{schedule: $schedule, scheduled_time: $scheduled_time}`
	// DefaultMaxCatchUp bounds the ticks catch_up: all fires.
	DefaultMaxCatchUp = 100
)

// Variables of a schedule's payload and key programs, in the order their
// values are passed to [gojq.Code.Run].
const (
	scheduleVarName = "$schedule"
	scheduleVarTime = "$scheduled_time"
)

// scheduleVars are the variables a schedule's programs are compiled with.
var scheduleVars = []string{scheduleVarName, scheduleVarTime}

// SchedulePlan is one schedule of a pipeline, as the scheduler runs it.
type SchedulePlan struct {
	Pipeline, Name string
	// Timing gives the ticks: of the cron spec, or of the interval.
	Timing schedtime.Timing
	// Location is the cron spec's time zone (UTC when unset); UTC for an
	// interval.
	Location *time.Location
	// Payload and Key are compiled jq programs with the variables
	// $schedule and $scheduled_time, in that order
	// (gojq.WithVariables([]string{"$schedule", "$scheduled_time"}));
	// their input is null. $schedule is the schedule's name,
	// $scheduled_time the tick as [SchedulePlan.ScheduledTime] writes it.
	// [SchedulePlan.Record] runs them.
	Payload *gojq.Code
	// PayloadSource is the payload program as written, or
	// [DefaultSchedulePayload].
	PayloadSource string
	// Key is nil when records have no key.
	Key       *gojq.Code
	KeySource string
	// Jitter is the most a fire is delayed, at random, after its tick.
	Jitter     time.Duration
	Overlap    Overlap
	CatchUp    CatchUp
	MaxCatchUp int
	// Enabled is false for a schedule that does not fire by itself.
	Enabled bool
}

// ID is "pipeline/name", the form `millrace schedules trigger` takes.
func (s SchedulePlan) ID() string { return s.Pipeline + "/" + s.Name }

// ScheduledTime is how a tick is written in $scheduled_time (and the
// millrace-scheduled-time header): RFC 3339 in the schedule's Location,
// in whole seconds (ticks are at least a second apart, so no two share
// one).
func (s SchedulePlan) ScheduledTime(tick time.Time) string {
	loc := s.Location
	if loc == nil {
		loc = time.UTC
	}
	return tick.In(loc).Format(time.RFC3339)
}

// Record runs the schedule's programs for tick and returns the record to
// send: value is the JSON text of the payload's first result; key is nil
// when the schedule has no key program or it has no result (or null),
// else what a jq key means (internal/jqkey: a string as its bytes,
// anything else as its JSON text; "" is an empty key). An error is a
// runtime error of a program, a payload with no result or null, a result
// with no exact JSON text, or ctx ending. Validation runs it once, for the
// first tick of 2026.
func (s SchedulePlan) Record(ctx context.Context, tick time.Time) (key, value []byte, err error) {
	at := s.ScheduledTime(tick)
	if value, err = payloadOf(s.Payload.RunWithContext(ctx, nil, s.Name, at)); err != nil {
		return nil, nil, fmt.Errorf("payload: %w", err)
	}
	if s.Key == nil {
		return nil, value, nil
	}
	if key, err = keyOf(s.Key.RunWithContext(ctx, nil, s.Name, at)); err != nil {
		return nil, nil, fmt.Errorf("key: %w", err)
	}
	return key, value, nil
}

// errNoPayload is the error of a payload program with no result.
var errNoPayload = errors.New("it has no result, or null (its first result is the record's value)")

// payloadOf is the JSON text of the first result of a payload program.
func payloadOf(iter gojq.Iter) ([]byte, error) {
	v, ok, err := jqkey.First(iter)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, errNoPayload
	}
	if err := exactjson.CheckValue(v); err != nil {
		return nil, fmt.Errorf("result has no exact JSON text: %w", err)
	}
	return gojq.Marshal(v)
}

// SchedulerPlan is what the schedulers of a file share.
type SchedulerPlan struct {
	// Topic and Group are the file's scheduler block's, by default
	// [ScheduleTopic] and [SchedulerGroup].
	Topic, Group string
	// SessionTimeout and RebalanceTimeout are the scheduler group's, from
	// defaults.session_timeout and defaults.rebalance_timeout (see
	// [StagePlan]); 0 means not set.
	SessionTimeout, RebalanceTimeout time.Duration
}

// ScheduleTopicConfig is the topic config of [ScheduleTopic]: compacted,
// so that it keeps the last fire of each schedule, in segments of an hour.
// The log cleaner never compacts the active segment, which Kafka rolls
// after a week (segment.ms) or a GiB (segment.bytes) by default: a topic
// of a few small records a minute would stay whole for a week, and a
// scheduler starting up would read every fire since.
func ScheduleTopicConfig() map[string]string {
	return map[string]string{
		"cleanup.policy": "compact",
		"segment.ms":     millis(time.Hour),
	}
}

// Schedules returns every schedule of every pipeline, in file order.
func (p *Plan) Schedules() []SchedulePlan {
	var all []SchedulePlan
	for _, pp := range p.Pipelines {
		all = append(all, pp.Schedules...)
	}
	return all
}

// EnabledSchedules returns the schedules that fire (enabled: true, the
// default), in file order: what a scheduler has to do.
func (p *Plan) EnabledSchedules() []SchedulePlan {
	var on []SchedulePlan
	for _, sp := range p.Schedules() {
		if sp.Enabled {
			on = append(on, sp)
		}
	}
	return on
}

// Schedule returns the schedule whose id is "pipeline/name".
func (p *Plan) Schedule(id string) (*SchedulePlan, error) {
	var ids []string
	for i := range p.Pipelines {
		for j := range p.Pipelines[i].Schedules {
			s := &p.Pipelines[i].Schedules[j]
			if s.ID() == id {
				return s, nil
			}
			ids = append(ids, s.ID())
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("no schedule %q (no pipeline has schedules)", id)
	}
	return nil, fmt.Errorf("no schedule %q (schedules: %s)", id, strings.Join(ids, ", "))
}

// schedulePlans resolves a pipeline's schedules: their unset fields take
// the defaults.
func (pl *Pipeline) schedulePlans() []SchedulePlan {
	var out []SchedulePlan
	for i := range pl.Schedules {
		s := &pl.Schedules[i]
		sp := SchedulePlan{Pipeline: pl.Name, Name: s.Name, Timing: s.timing, Location: s.location,
			Payload: s.payload, PayloadSource: s.Payload, Key: s.key, KeySource: s.Key, Jitter: s.Jitter,
			Overlap: Overlap(s.Overlap), CatchUp: CatchUp(s.CatchUp), MaxCatchUp: s.MaxCatchUp,
			Enabled: s.Enabled || !s.Set("enabled")}
		if !s.Set("payload") {
			sp.PayloadSource = DefaultSchedulePayload
		}
		if !s.Set("overlap") {
			sp.Overlap = OverlapSkip
		}
		if !s.Set("catch_up") {
			sp.CatchUp = CatchUpLatest
		}
		if !s.Set("max_catch_up") {
			sp.MaxCatchUp = DefaultMaxCatchUp
		}
		out = append(out, sp)
	}
	return out
}

// keyOf is the key the first result of a key program stands for: nil when
// there is none.
func keyOf(iter gojq.Iter) ([]byte, error) {
	v, ok, err := jqkey.First(iter)
	if err != nil || !ok {
		return nil, err
	}
	return jqkey.Bytes(v)
}

// topic is the schedule topic of a file whose scheduler block is s (nil:
// none).
func (s *Scheduler) topic() string {
	if s == nil || s.Topic == "" {
		return ScheduleTopic
	}
	return s.Topic
}

// group is the scheduler group of a file whose scheduler block is s.
func (s *Scheduler) group() string {
	if s == nil || s.Group == "" {
		return SchedulerGroup
	}
	return s.Group
}

// validGroup matches the consumer group names millrace accepts: the
// characters of a topic name, so that a group shows and types the same
// everywhere (Kafka itself accepts any non-empty string).
var validGroup = regexp.MustCompile(`^[A-Za-z0-9._-]{1,249}$`)

func (s *Scheduler) validate(p *problems, f *File) {
	if !s.decoded() {
		return
	}
	if at := s.Of("group"); s.Set("group") {
		for _, pl := range f.Pipelines {
			taken := ""
			for _, st := range pl.Stages {
				if GroupName(pl.Name, st.Name) == s.Group {
					taken = fmt.Sprintf("stage %s/%s's consumer group", pl.Name, st.Name)
				}
			}
			if pl.Results != nil && JobsGroup(pl.Name) == s.Group {
				taken = fmt.Sprintf("the consumer group of pipeline %s's job results", pl.Name)
			}
			if taken != "" {
				p.add(at, "scheduler: group %s is %s: pick another", p.quoted(at, s.Group), taken)
			}
		}
	}
	checkTopic(p, s.Positions, "scheduler", "topic", s.Topic, false)
	if s.Set("topic") && s.Topic == "" {
		p.add(s.Of("topic"), "scheduler: topic is empty: leave it out for the default %s", ScheduleTopic)
	}
	if at := s.Of("group"); s.Set("group") && !validGroup.MatchString(s.Group) {
		p.add(at, "scheduler: group %s: want letters, digits, '.', '_' or '-', at most 249 (default %s)",
			p.quoted(at, s.Group), SchedulerGroup)
	}
}
