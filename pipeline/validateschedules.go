package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/itchyny/gojq"

	"github.com/millrace/millrace/internal/schedtime"
)

// Bounds of a schedule.
const (
	minEvery   = time.Second
	maxJitter  = time.Hour
	maxCatchUp = 10000
	// scheduleRunTimeout bounds each run of a schedule's programs at
	// validation: a program that loops must not hang `millrace validate`.
	scheduleRunTimeout = 2 * time.Second
)

// scheduleCheckFrom is the time validation runs a schedule's programs
// after: they run for its first tick after it.
var scheduleCheckFrom = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// validateSchedules checks a pipeline's schedules; where names the
// pipeline.
func (pl *Pipeline) validateSchedules(p *problems, where string) {
	names := map[string]Pos{}
	for i := range pl.Schedules {
		s := &pl.Schedules[i]
		if !s.decoded() { // not a mapping: a problem already
			continue
		}
		if prev, dup := names[s.Name]; dup && s.Name != "" {
			p.add(s.Of("name"), "%s: duplicate schedule name %s (first defined at line %d)",
				where, p.quoted(s.Of("name"), s.Name), prev.Line)
		} else {
			names[s.Name] = s.Of("name")
		}
		s.validate(p, pl, i)
	}
}

// validate checks one schedule, the index-th of pipeline pl, and keeps its
// timing, zone and compiled programs for the plan.
func (s *Schedule) validate(p *problems, pl *Pipeline, index int) {
	where := fmt.Sprintf("pipeline %q schedule %d", p.pipelineName(pl), index+1)
	if s.Set("name") {
		where = fmt.Sprintf("pipeline %q schedule %s", p.pipelineName(pl), p.quoted(s.Of("name"), s.Name))
	}
	checkName(p, s.Positions, "schedule", s.Name)
	s.location = time.UTC
	s.timing = s.validateTiming(p, where)
	s.validateJitter(p, where)
	s.validatePolicies(p, pl, where)

	payload := s.Payload
	if !s.Set("payload") {
		payload = DefaultSchedulePayload
	}
	s.payload = compileScheduleProgram(p, s.Positions, where, "payload", payload)
	if s.Set("key") {
		s.key = compileScheduleProgram(p, s.Positions, where, "key", s.Key)
	}
	s.check(p, where)
}

// validateTiming checks cron, every and timezone and returns the timing
// of the schedule (nil if they have a problem); it sets s.location.
func (s *Schedule) validateTiming(p *problems, where string) schedtime.Timing {
	cron, every := s.Set("cron"), s.Set("every")
	switch {
	case !cron && !every:
		p.add(s.Self, "%s: a schedule needs cron: or every: (such as cron: \"0 2 * * *\" or every: 15m)", where)
	case cron && every:
		p.add(s.Of("every"), "%s: cron: and every: are both set: choose one", where)
	}
	ok := cron != every
	if s.Set("timezone") {
		at := s.Of("timezone")
		if every && !cron {
			p.add(at, "%s: timezone does not apply to every: every: fires at multiples of the interval since the Unix epoch, "+
				"in no time zone; use cron: for local times", where)
		} else if loc, err := loadLocation(s.Timezone); err != nil {
			p.add(at, "%s: unknown timezone %s: want an IANA time zone name such as Europe/Berlin, or UTC",
				where, p.quoted(at, s.Timezone))
			ok = false
		} else {
			s.location = loc
		}
	}
	var timing schedtime.Timing
	if cron {
		at := s.Of("cron")
		t, err := schedtime.ParseCron(s.Cron, s.location)
		if err != nil {
			// The error quotes the spec: `invalid cron spec "…": …`.
			p.add(at, "%s: %s", where, scrubbed(err.Error(), p.sourcesAt(at)))
			ok = false
		}
		timing = t
	}
	if every {
		at := s.Of("every")
		switch {
		case s.Every < minEvery:
			p.add(at, "%s: every must be at least %s, got %s", where, formatDuration(minEvery), p.shown(at, formatDuration(s.Every)))
			ok = false
		case s.Every%time.Second != 0:
			// $scheduled_time and the millrace-scheduled-time header are in
			// whole seconds: two ticks must not share one.
			p.add(at, "%s: every %s: want a whole number of seconds", where, p.shown(at, formatDuration(s.Every)))
			ok = false
		case !cron:
			timing = schedtime.Every(s.Every)
		}
	}
	if !ok {
		return nil
	}
	if timing.Next(scheduleCheckFrom).IsZero() {
		at := s.Of("cron")
		p.add(at, "%s: cron %s has no tick in the five years after %s: it would never fire",
			where, p.quoted(at, s.Cron), scheduleCheckFrom.Format(time.DateOnly))
		return nil
	}
	return timing
}

// loadLocation loads an IANA time zone. "" and "Local" are refused: they
// would be the zone of whichever machine runs the scheduler.
func loadLocation(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, errors.New("not an IANA time zone")
	}
	return time.LoadLocation(name)
}

func (s *Schedule) validateJitter(p *problems, where string) {
	if !s.Set("jitter") {
		return
	}
	at := s.Of("jitter")
	gap := time.Duration(0)
	if s.timing != nil && s.Set("cron") {
		gap = shortestGap(s.timing)
	}
	switch {
	case s.Jitter < 0 || s.Jitter > maxJitter:
		p.add(at, "%s: jitter must be between 0s and %s, got %s", where, formatDuration(maxJitter), p.shown(at, formatDuration(s.Jitter)))
	case s.Set("every") && !s.Set("cron") && s.Every >= minEvery && s.Jitter >= s.Every:
		p.add(at, "%s: jitter %s must be less than every %s, so that each fire comes before the next tick",
			where, p.shown(at, formatDuration(s.Jitter)), p.shown(s.Of("every"), formatDuration(s.Every)))
	case gap > 0 && s.Jitter >= gap:
		p.add(at, "%s: jitter %s must be less than the shortest time between two ticks of the cron spec (%s), "+
			"so that each fire comes before the next tick", where, p.shown(at, formatDuration(s.Jitter)), formatDuration(gap))
	}
}

// shortestGap is the shortest time between two of timing's ticks over the
// year from scheduleCheckFrom (at most 10,000 ticks looked at: a spec that
// fires that often has gaps of a minute).
func shortestGap(timing interface{ Next(time.Time) time.Time }) time.Duration {
	gap := time.Duration(0)
	end := scheduleCheckFrom.AddDate(1, 0, 0)
	prev := timing.Next(scheduleCheckFrom)
	for i := 0; i < 10000 && !prev.IsZero() && prev.Before(end); i++ {
		next := timing.Next(prev)
		if next.IsZero() {
			break
		}
		if d := next.Sub(prev); gap == 0 || d < gap {
			gap = d
		}
		prev = next
	}
	return gap
}

// validatePolicies checks overlap, catch_up and max_catch_up.
func (s *Schedule) validatePolicies(p *problems, pl *Pipeline, where string) {
	at := s.Of("overlap")
	switch overlap := Overlap(s.Overlap); {
	case s.Set("overlap") && overlap != OverlapSkip && overlap != OverlapAllow:
		p.add(at, "%s: overlap %s: want skip (the default: no fire while the previous job from this schedule runs) or allow",
			where, p.quoted(at, s.Overlap))
	case overlap != OverlapAllow && pl.Results == nil:
		p.add(at, "%s: overlap: skip (the default) needs results: on pipeline %q, to know whether the previous job still runs: "+
			"add `results: {}` to the pipeline, or set overlap: allow", where, p.pipelineName(pl))
	}
	at = s.Of("catch_up")
	catchUp := CatchUp(s.CatchUp)
	if !s.Set("catch_up") {
		catchUp = CatchUpLatest
	}
	switch catchUp {
	case CatchUpNone, CatchUpLatest, CatchUpAll:
	default:
		p.add(at, "%s: catch_up %s: want none (skip the ticks missed while no scheduler ran), latest (the default: fire the "+
			"latest of them) or all (fire each, at most max_catch_up)", where, p.quoted(at, s.CatchUp))
	}
	if catchUp == CatchUpAll && Overlap(s.Overlap) != OverlapAllow && pl.Results != nil {
		p.add(at, "%s: catch_up: all fires the missed ticks one right after the other, so with overlap: skip (the default) "+
			"all but the first would be skipped while it runs: set overlap: allow, or catch_up: latest", where)
	}
	if !s.Set("max_catch_up") {
		return
	}
	if s.MaxCatchUp < 1 || s.MaxCatchUp > maxCatchUp {
		checkRange(p, s.Positions, "max_catch_up", s.MaxCatchUp, 1, maxCatchUp)
	} else if catchUp != CatchUpAll {
		p.add(s.Of("max_catch_up"), "%s: max_catch_up applies to catch_up: all: set catch_up: all, or remove max_catch_up", where)
	}
}

// compileScheduleProgram compiles the payload or key program src of a
// schedule (what names it), or reports why it cannot and returns nil.
func compileScheduleProgram(p *problems, ps Positions, where, what, src string) *gojq.Code {
	at := ps.Of(what)
	example := `{report: "daily", day: $scheduled_time[:10]}`
	if what == "key" {
		example = "$schedule"
	}
	if strings.TrimSpace(src) == "" {
		p.add(at, "%s: %s is empty: want a jq program such as %s", where, what, example)
		return nil
	}
	secrets := p.sourcesAt(at)
	q, err := gojq.Parse(src)
	if err != nil {
		p.add(at, "%s: %s: jq program does not parse: %s", where, what, scrubbed(err.Error(), secrets))
		return nil
	}
	code, err := gojq.Compile(q, gojq.WithVariables(scheduleVars))
	if err != nil {
		p.add(at, "%s: %s: jq program does not compile: %s (its variables are $schedule and $scheduled_time)",
			where, what, scrubbed(err.Error(), secrets))
		return nil
	}
	return code
}

// check runs the schedule's programs once, for its first tick after
// [scheduleCheckFrom], and reports what fails: a runtime error, a payload
// with no result, a result with no exact JSON text, or a run that does not
// end.
func (s *Schedule) check(p *problems, where string) {
	if s.payload == nil && s.key == nil {
		return
	}
	tick := scheduleCheckFrom
	if s.timing != nil {
		tick = s.timing.Next(scheduleCheckFrom)
	}
	sp := SchedulePlan{Name: s.Name, Location: s.location}
	at := sp.ScheduledTime(tick)
	secrets := slices.Concat(p.sourcesAt(s.Of("name")), p.sourcesAt(s.Of("timezone")))
	run := func(what string, code *gojq.Code, value func(gojq.Iter) error) {
		if code == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), scheduleRunTimeout)
		defer cancel()
		err := value(code.RunWithContext(ctx, nil, s.Name, at))
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("it did not finish within %s", formatDuration(scheduleRunTimeout))
		}
		if err != nil {
			p.add(s.Of(what), "%s: %s failed for the tick %s (the first of %d): %s", where, what, at, scheduleCheckFrom.Year(),
				scrubbed(err.Error(), slices.Concat(secrets, p.sourcesAt(s.Of(what)))))
		}
	}
	run("payload", s.payload, func(iter gojq.Iter) error {
		_, err := payloadOf(iter)
		return err
	})
	run("key", s.key, func(iter gojq.Iter) error {
		_, err := keyOf(iter)
		return err
	})
}
