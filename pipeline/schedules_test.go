package pipeline_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/millrace/millrace/pipeline"
)

// skipNeedsResults is the problem of overlap: skip on a pipeline without
// results, after "pipeline … schedule …: ".
func skipNeedsResults(pipeline string) string {
	return `overlap: skip (the default) needs results: on pipeline "` + pipeline + `", to know whether the previous job ` +
		"still runs: add `results: {}` to the pipeline, or set overlap: allow"
}

// newYear is the time validation runs schedules' programs after.
var newYear = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestPlan_schedules_take_the_file_then_the_defaults(t *testing.T) {
	p := plan(t, "testdata/schedules.good.yaml")
	type got struct {
		id, timing, location     string
		payloadSource, keySource string
		hasKey                   bool
		jitter                   time.Duration
		overlap                  pipeline.Overlap
		catchUp                  pipeline.CatchUp
		maxCatchUp               int
		enabled                  bool
		firstTick, key, value    string
		keyIsNil                 bool
	}
	want := []got{
		{"report/nightly", "cron 0 2 * * * (Europe/Berlin)", "Europe/Berlin",
			`{report: "daily", day: $scheduled_time[:10], by: $schedule}`, `$scheduled_time[:10]`, true,
			30 * time.Second, pipeline.OverlapAllow, pipeline.CatchUpAll, 7, true,
			"2026-01-01T02:00:00+01:00", "2026-01-01", `{"by":"nightly","day":"2026-01-01","report":"daily"}`, false},
		{"report/weekly", "cron @weekly (UTC)", "UTC", pipeline.DefaultSchedulePayload, "", false,
			0, pipeline.OverlapSkip, pipeline.CatchUpLatest, pipeline.DefaultMaxCatchUp, true,
			"2026-01-04T00:00:00Z", "", `{"schedule":"weekly","scheduled_time":"2026-01-04T00:00:00Z"}`, true},
		{"report/poll", "every 15m", "UTC", pipeline.DefaultSchedulePayload, "", false,
			time.Minute, pipeline.OverlapAllow, pipeline.CatchUpNone, pipeline.DefaultMaxCatchUp, false,
			"2026-01-01T00:15:00Z", "", `{"schedule":"poll","scheduled_time":"2026-01-01T00:15:00Z"}`, true},
		// A key whose result is "" is an empty key, not none (as produce
		// --key-jq).
		{"plain/tick", "every 1h", "UTC", pipeline.DefaultSchedulePayload, `""`, true,
			0, pipeline.OverlapAllow, pipeline.CatchUpLatest, pipeline.DefaultMaxCatchUp, true,
			"2026-01-01T01:00:00Z", "", `{"schedule":"tick","scheduled_time":"2026-01-01T01:00:00Z"}`, false},
	}
	all := p.Schedules()
	if len(all) != len(want) {
		t.Fatalf("%d schedules, want %d", len(all), len(want))
	}
	for i, s := range all {
		tick := s.Timing.Next(newYear)
		key, value, err := s.Record(context.Background(), tick)
		if err != nil {
			t.Fatalf("%s: Record: %v", s.ID(), err)
		}
		g := got{s.ID(), s.Timing.String(), s.Location.String(), s.PayloadSource, s.KeySource, s.Key != nil,
			s.Jitter, s.Overlap, s.CatchUp, s.MaxCatchUp, s.Enabled, s.ScheduledTime(tick), string(key), string(value), key == nil}
		if g != want[i] {
			t.Errorf("schedule %d:\n got  %+v\n want %+v", i+1, g, want[i])
		}
		if s.Payload == nil {
			t.Errorf("%s: no compiled payload", s.ID())
		}
	}
	report, _ := p.Pipeline("report")
	if len(report.Schedules) != 3 || report.Schedules[2].Name != "poll" || report.Schedules[0].Pipeline != "report" {
		t.Errorf("the pipeline's schedules: %+v", report.Schedules)
	}
}

func TestPlan_schedule_topic_and_scheduler(t *testing.T) {
	p := plan(t, "testdata/schedules.good.yaml")
	want := pipeline.SchedulerPlan{Topic: "millrace.schedules", Group: "millrace.scheduler",
		SessionTimeout: 20 * time.Second, RebalanceTimeout: 2 * time.Minute}
	if p.Scheduler != want {
		t.Errorf("scheduler %+v, want %+v", p.Scheduler, want)
	}
	var names []string
	for _, tp := range p.Topics() {
		names = append(names, tp.Name)
		if tp.Name != pipeline.ScheduleTopic {
			continue
		}
		w := pipeline.Topic{Name: "millrace.schedules", Partitions: 1,
			Config: map[string]string{"cleanup.policy": "compact", "segment.ms": "3600000"}}
		if !reflect.DeepEqual(tp, w) {
			t.Errorf("schedule topic %+v, want %+v", tp, w)
		}
	}
	if got := strings.Join(names, " "); got != "millrace.schedules plain.in plain.quarantine report.jobs report.jobs.status "+
		"report.quarantine report.requests" {
		t.Errorf("topics %s", got)
	}

	// No schedule (an empty list is none): no schedule topic; the
	// scheduler's names all the same, and no group timeouts.
	for _, schedules := range []string{"", "    schedules: []\n", "    schedules:\n"} {
		src := "version: 1\npipelines:\n  - name: p\n    input: p.in\n" + schedules + "    stages: [{name: a, filter: log}]\n"
		f, err := pipeline.Parse("x.yaml", []byte(src), noEnv)
		if err != nil {
			t.Fatal(err)
		}
		pl := f.Plan()
		for _, tp := range pl.Topics() {
			if tp.Name == pipeline.ScheduleTopic {
				t.Errorf("%q: a schedule topic without schedules", schedules)
			}
		}
		if w := (pipeline.SchedulerPlan{Topic: pipeline.ScheduleTopic, Group: pipeline.SchedulerGroup}); pl.Scheduler != w {
			t.Errorf("%q: scheduler %+v, want %+v", schedules, pl.Scheduler, w)
		}
		if len(pl.Schedules()) != 0 || pl.Pipelines[0].Schedules != nil {
			t.Errorf("%q: schedules %v", schedules, pl.Schedules())
		}
	}
}

func TestPlan_Schedule_by_id(t *testing.T) {
	p := plan(t, "testdata/schedules.good.yaml")
	s, err := p.Schedule("report/poll")
	if err != nil || s.ID() != "report/poll" || s.Timing.String() != "every 15m" {
		t.Fatalf("Schedule(report/poll) = %+v, %v", s, err)
	}
	if s != &p.Pipelines[0].Schedules[2] {
		t.Errorf("Schedule returns a copy, not the plan's schedule")
	}
	for id, want := range map[string]string{
		"report/nope": `no schedule "report/nope" (schedules: report/nightly, report/weekly, report/poll, plain/tick)`,
		"report":      `no schedule "report" (schedules: report/nightly, report/weekly, report/poll, plain/tick)`,
	} {
		if _, err := p.Schedule(id); err == nil || err.Error() != want {
			t.Errorf("Schedule(%q): %v, want %s", id, err, want)
		}
	}
	if _, err := plan(t, "testdata/minimal.good.yaml").Schedule("echo/x"); err == nil ||
		err.Error() != `no schedule "echo/x" (no pipeline has schedules)` {
		t.Errorf("no schedules: %v", err)
	}
}

func TestSchedulePlan_programs_read_schedule_and_scheduled_time_in_that_order(t *testing.T) {
	p := plan(t, "testdata/schedules.good.yaml")
	s, _ := p.Schedule("report/weekly")
	v, _ := s.Payload.Run(nil, "n", "t").Next()
	if got := fmt.Sprint(v); got != "map[schedule:n scheduled_time:t]" {
		t.Errorf("default payload run with (n, t): %s", got)
	}
	// In whole seconds (every: 1500ms ticks at fractions).
	if got := s.ScheduledTime(time.Unix(1, 500_000_000)); got != "1970-01-01T00:00:01Z" {
		t.Errorf("ScheduledTime: %s", got)
	}
	nightly, _ := p.Schedule("report/nightly")
	if got := nightly.ScheduledTime(time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)); got != "2026-07-01T02:00:00+02:00" {
		t.Errorf("ScheduledTime in Europe/Berlin: %s", got)
	}
}

func TestSchedulePlan_Record_fails_as_validation_would(t *testing.T) {
	// Valid: its programs succeed at the first tick of 2026; at others
	// they fail, or have no result.
	src := `version: 1
pipelines:
  - name: p
    input: p.in
    stages: [{name: a, filter: log}]
    schedules:
      - name: s
        every: 1h
        overlap: allow
        payload: 'if $scheduled_time[11:13] == "02" then error("two") elif $scheduled_time[11:13] == "03" then empty elif $scheduled_time[11:13] == "06" then null else 1 end'
        key: 'if $scheduled_time[11:13] == "04" then null elif $scheduled_time[11:13] == "05" then error("five") else {h: $scheduled_time[11:13]} end'
`
	f, err := pipeline.Parse("x.yaml", []byte(src), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := f.Plan().Schedule("p/s")
	for hour, want := range map[int]string{
		1: `{"h":"01"} 1 <nil>`,
		2: `  payload: error: two`,
		3: `  payload: it has no result, or null (its first result is the record's value)`,
		4: `<nil> 1 <nil>`, // null: no key
		5: `  key: error: five`,
		6: `  payload: it has no result, or null (its first result is the record's value)`,
	} {
		key, value, err := s.Record(context.Background(), newYear.Add(time.Duration(hour)*time.Hour))
		k := "<nil>"
		if key != nil || err != nil {
			k = string(key)
		}
		if got := fmt.Sprintf("%s %s %v", k, value, err); got != want {
			t.Errorf("hour %d: %s, want %s", hour, got, want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Record(ctx, newYear); err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("a cancelled Record: %v", err)
	}
}

func TestValidate_schedules(t *testing.T) {
	t.Parallel()
	pipelines := func(extra string) string {
		return "version: 1\npipelines:\n  - name: p\n    input: p.in\n    stages: [{name: a, filter: log}]\n" + extra
	}
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"overlap: skip by default, without results: at the schedule", pipelines(`    schedules:
      - name: s
        every: 1h
`), []string{`7:9: pipeline "p" schedule "s": ` + skipNeedsResults("p")}},
		{"overlap: skip written, without results: at overlap", pipelines(`    schedules: [{name: s, cron: "@daily", overlap: skip}]
`), []string{`6:52: pipeline "p" schedule "s": ` + skipNeedsResults("p")}},
		{"results: ~ is no results", pipelines(`    results: ~
    schedules: [{name: s, every: 1h}]
`), []string{`7:17: pipeline "p" schedule "s": ` + skipNeedsResults("p")}},
		{"a schedule without a name", pipelines(`    schedules: [{name: s, every: 1h, overlap: allow}, {every: 1h}]
`), []string{
			`6:55: schedule: missing key "name"`,
		}},
		{"a schedule without a name, cron or every: one problem at its position", pipelines(`    results: {}
    schedules: [{name: s, every: 1h}, {overlap: allow}]
`), []string{
			`7:39: schedule: missing key "name"`,
		}},
		{"unnamed, with other problems", pipelines(`    results: {}
    schedules: [{every: 1h, timezone: UTC}]
`), []string{
			`7:17: schedule: missing key "name"`,
			`7:39: pipeline "p" schedule 1: timezone does not apply to every: every: fires at multiples of the interval ` +
				`since the Unix epoch, in no time zone; use cron: for local times`,
		}},
		{"enabled takes true and false only", pipelines(`    results: {}
    schedules:
      - {name: a, every: 1h, enabled: "true"}
      - {name: b, every: 1h, enabled: 1}
      - {name: c, every: 1h, enabled: off}
      - {name: d, every: 1h, enabled: [true]}
      - {name: e, every: 1h, enabled: False}
`), []string{
			`8:39: enabled: want true or false, got "true"`,
			`9:39: enabled: want true or false, got "1"`,
			`10:39: enabled: want true or false, got "off"`,
			`11:39: enabled: want true or false, got a list`,
		}},
		{"a cron spec with seconds", pipelines(`    results: {}
    schedules: [{name: s, cron: "0 0 2 * * *"}]
`), []string{
			`7:33: pipeline "p" schedule "s": invalid cron spec "0 0 2 * * *": cron: takes 5 fields (minute hour day-of-month ` +
				`month day-of-week), without seconds, and every: takes intervals: expected exactly 5 fields, found 6: [0 0 2 * * *]`,
		}},
		{"a cron spec with CRON_TZ", pipelines(`    results: {}
    schedules: [{name: s, cron: "CRON_TZ=Europe/Berlin 0 2 * * *"}]
`), []string{
			`7:33: pipeline "p" schedule "s": invalid cron spec "CRON_TZ=Europe/Berlin 0 2 * * *": use timezone: instead of CRON_TZ=`,
		}},
		{"a jitter as long as the interval, by default", pipelines(`    results: {}
    schedules: [{name: s, every: 30s, jitter: 1m}]
`), []string{
			`7:47: pipeline "p" schedule "s": jitter 1m must be less than every 30s, so that each fire comes before the next tick`,
		}},
		{"a jitter as long as a cron spec's shortest period", pipelines(`    results: {}
    schedules: [{name: s, cron: "0,10 * * * *", jitter: 10m}]
`), []string{
			`7:57: pipeline "p" schedule "s": jitter 10m must be less than the shortest time between two ticks of the cron spec (10m), so that each fire comes before the next tick`,
		}},
		{"a jitter under a cron spec's shortest period", pipelines(`    results: {}
    schedules: [{name: s, cron: "0,10 * * * *", jitter: 9m}]
`), nil},
		{"every in whole seconds", pipelines(`    results: {}
    schedules: [{name: s, every: 1500ms}]
`), []string{`7:34: pipeline "p" schedule "s": every 1.5s: want a whole number of seconds`}},
		{"catch_up: all with overlap: skip", pipelines(`    results: {}
    schedules: [{name: s, every: 1m, catch_up: all}]
`), []string{`7:48: pipeline "p" schedule "s": catch_up: all fires the missed ticks one right after the other, so with overlap: skip (the default) all but the first would be skipped while it runs: set overlap: allow, or catch_up: latest`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt.src, noEnv, tt.want) })
	}
}

func TestValidate_a_payload_that_does_not_end(t *testing.T) {
	t.Parallel()
	src := `version: 1
pipelines:
  - name: p
    input: p.in
    stages: [{name: a, filter: log}]
    schedules: [{name: s, every: 1h, overlap: allow, payload: 'def f: f; f'}]
`
	checkProblems(t, src, noEnv, []string{
		`6:63: pipeline "p" schedule "s": payload failed for the tick 2026-01-01T01:00:00Z (the first of 2026): it did not finish within 2s`,
	})
}

func TestValidate_the_schedule_topic_is_nobody_elses(t *testing.T) {
	const isScheduleTopic = `is millrace's schedule topic, which the schedules of this file use (line %d): pick another name`
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"an input and a reply topic", `version: 1
pipelines:
  - name: p
    input: millrace.schedules
    results: {reply_topics: [millrace.schedules]}
    stages: [{name: a, filter: log}]
  - name: q
    input: q.in
    output: millrace.schedules
    stages: [{name: a, filter: log}]
    schedules: [{name: s, every: 1h, overlap: allow}]
`, []string{
			`4:12: topic "millrace.schedules" (the input of pipeline "p") ` + fmt.Sprintf(isScheduleTopic, 11),
			`5:30: topic "millrace.schedules" (a reply topic of pipeline "p") ` + fmt.Sprintf(isScheduleTopic, 11),
			`9:13: topic "millrace.schedules" (the output of pipeline "q") ` + fmt.Sprintf(isScheduleTopic, 11),
		}},
		{"a stage's topic, a priority topic and a derived stage topic", `version: 1
pipelines:
  - name: millrace
    input: m.in
    priority: [{topic: millrace.schedules}]
    schedules: [{name: s, every: 1h, overlap: allow}]
    stages:
      - {name: a, filter: log}
      - {name: b, filter: log, topic: millrace.schedules}
      - {name: schedules, filter: log}
`, []string{
			`5:24: topic "millrace.schedules" (a priority topic of pipeline "millrace") ` + fmt.Sprintf(isScheduleTopic, 6),
			`9:16: stage millrace/b would read topic "millrace.schedules", which is also a priority topic of pipeline "millrace": ` +
				"rename one or set `topic:`",
			`9:39: topic "millrace.schedules" (the topic stage millrace/b reads) ` + fmt.Sprintf(isScheduleTopic, 6),
			`10:16: stage millrace/schedules would read topic "millrace.schedules", which stage millrace/b reads too: rename one or set ` + "`topic:`",
		}},
		{"'_' for '.'", `version: 1
pipelines:
  - name: p
    input: millrace_schedules
    stages: [{name: a, filter: log}]
  - name: q
    input: q.in
    stages: [{name: a, filter: log}]
    schedules: [{name: s, every: 1h, overlap: allow}]
`, []string{
			`4:12: topic "millrace_schedules" (the input of pipeline "p") collides with "millrace.schedules" (the schedule topic, line 9)` + collide,
		}},
		{"no schedules: the name is free", `version: 1
pipelines:
  - name: p
    input: millrace.schedules
    stages: [{name: a, filter: log}]
`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt.src, noEnv, tt.want) })
	}
}

func TestPlan_scheduler_block_names_the_group_and_topic(t *testing.T) {
	src := `version: 1
scheduler: {group: team-a.scheduler, topic: team-a.schedules}
pipelines:
  - name: p
    input: p.in
    schedules: [{name: s, every: 1m, overlap: allow}]
    stages: [{name: a, filter: log}]
`
	f, err := pipeline.Parse("x.yaml", []byte(src), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	pl := f.Plan()
	if pl.Scheduler.Group != "team-a.scheduler" || pl.Scheduler.Topic != "team-a.schedules" {
		t.Errorf("scheduler %+v", pl.Scheduler)
	}
	found := false
	for _, tp := range pl.Topics() {
		found = found || tp.Name == "team-a.schedules" && tp.Partitions == 1
		if tp.Name == pipeline.ScheduleTopic {
			t.Errorf("the default schedule topic is in the plan: %+v", tp)
		}
	}
	if !found {
		t.Errorf("no team-a.schedules in %+v", pl.Topics())
	}
	bad := `version: 1
scheduler: {group: "a b", topic: "p.in"}
pipelines:
  - name: p
    input: p.in
    schedules: [{name: s, every: 1m, overlap: allow}]
    stages: [{name: a, filter: log}]
`
	_, err = pipeline.Parse("x.yaml", []byte(bad), noEnv)
	got := fmt.Sprint(err)
	for _, w := range []string{
		`x.yaml:2:20: scheduler: group "a b": want letters, digits, '.', '_' or '-', at most 249 (default millrace.scheduler)`,
		`x.yaml:5:12: topic "p.in" (the input of pipeline "p") is millrace's schedule topic`,
	} {
		if !strings.Contains(got, w) {
			t.Errorf("problems\n%s\nlack\n%s", got, w)
		}
	}
}

func TestValidate_scheduler_group_is_nobody_elses(t *testing.T) {
	src := `version: 1
scheduler: {group: millrace.p.a}
pipelines:
  - name: p
    input: p.in
    schedules: [{name: s, every: 1m, overlap: allow}]
    stages: [{name: a, filter: log}]
`
	_, err := pipeline.Parse("x.yaml", []byte(src), noEnv)
	if w := `x.yaml:2:20: scheduler: group "millrace.p.a" is stage p/a's consumer group: pick another`; !strings.Contains(fmt.Sprint(err), w) {
		t.Errorf("problems\n%v\nlack\n%s", err, w)
	}
}
