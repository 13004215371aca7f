package scheduler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/jonboulle/clockwork"

	"github.com/millrace/millrace/filters"
	_ "github.com/millrace/millrace/filters/std"
	"github.com/millrace/millrace/internal/scheduler"
	"github.com/millrace/millrace/jobs"
	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/router"
	"github.com/millrace/millrace/testkit"
	"github.com/millrace/millrace/transport"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// fixture is a plan with schedules running in-process on a fake clock,
// in a scheduler group and topic of its own (tests share a broker).
type fixture struct {
	t     *testing.T
	b     testkit.Backend
	plan  *pipeline.Plan
	clock *clockwork.FakeClock
	run   *testkit.Running
}

func newFixture(t *testing.T, b testkit.Backend, yaml string, start time.Time) *fixture {
	t.Helper()
	plan := testkit.LoadYAML(t, yaml)
	u := testkit.Unique()
	plan.Scheduler.Topic += "." + u
	plan.Scheduler.Group += "." + u
	return &fixture{t: t, b: b, plan: plan, clock: clockwork.NewFakeClockAt(start)}
}

// start runs the plan and waits until its scheduler leads and waits for
// a tick.
func (f *fixture) start() {
	f.t.Helper()
	f.run = testkit.Run(f.t, f.b, f.plan, testkit.RunOptions{Configure: func(c *router.EngineConfig) { c.Clock = f.clock }})
	f.idle()
}

func (f *fixture) stop() {
	f.t.Helper()
	if err := f.run.Stop(); err != nil {
		f.t.Fatal(err)
	}
}

// idle waits until the scheduler waits on the clock: it has handled every
// tick due.
func (f *fixture) idle() {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := f.clock.BlockUntilContext(ctx, 1); err != nil {
		f.t.Fatalf("the scheduler did not come to wait for its next tick: %v", err)
	}
}

// advance moves the clock on by d and waits until the scheduler handled
// what came due.
func (f *fixture) advance(d time.Duration) {
	f.t.Helper()
	f.clock.Advance(d)
	f.idle()
}

// fired is a record a schedule sent: its schedule, scheduled time and job.
type fired struct {
	schedule, scheduled, job string
	payload                  string
}

// records reads every record of the pipeline's input.
func (f *fixture) records(pipelineName string) []fired {
	f.t.Helper()
	pp, err := f.plan.Pipeline(pipelineName)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []fired
	for _, r := range f.b.ReadAll(f.t, pp.Input) {
		out = append(out, fired{schedule: r.Headers[filters.HeaderSchedule], scheduled: r.Headers[filters.HeaderScheduledTime],
			job: r.Headers[filters.HeaderJob], payload: string(r.Value)})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].schedule < out[j].schedule || out[i].schedule == out[j].schedule && out[i].scheduled < out[j].scheduled
	})
	return out
}

// times are the scheduled times of schedule id's records, in order; a
// duplicate fails the test.
func times(t *testing.T, recs []fired, id string) []string {
	t.Helper()
	var out []string
	for _, r := range recs {
		if r.schedule == id {
			if slices.Contains(out, r.scheduled) {
				t.Errorf("%s fired %s twice", id, r.scheduled)
			}
			out = append(out, r.scheduled)
		}
	}
	return out
}

func secondsAfter(t0 time.Time, secs ...int) []string {
	var out []string
	for _, s := range secs {
		out = append(out, t0.Add(time.Duration(s)*time.Second).UTC().Format(time.RFC3339))
	}
	return out
}

func TestCatchUp_after_every_process_was_stopped_over_5_ticks(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		p := "catchup-" + testkit.Unique()
		f := newFixture(t, b, fmt.Sprintf(`
version: 1
pipelines:
  - name: %[1]s
    input: %[1]s
    partitions: 2
    schedules:
      - {name: none, every: 1s, catch_up: none, overlap: allow}
      - {name: latest, every: 1s, overlap: allow}
      - {name: all, every: 1s, catch_up: all, max_catch_up: 10, overlap: allow}
    stages:
      - {name: pass, filter: jq, config: {program: .}}
`, p), time.Date(2026, 11, 30, 10, 0, 0, 500e6, time.UTC))
		t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
		f.start()
		f.advance(time.Second) // 10:00:01
		f.advance(time.Second) // 10:00:02
		f.stop()
		f.clock.Advance(5 * time.Second) // 10:00:07.5: ticks 3 to 7 pass with no process running
		f.start()
		recs := f.records(p)
		want := map[string][]string{
			"none":   secondsAfter(t0, 1, 2),
			"latest": secondsAfter(t0, 1, 2, 7),
			"all":    secondsAfter(t0, 1, 2, 3, 4, 5, 6, 7),
		}
		for name, w := range want {
			if got := times(t, recs, p+"/"+name); !slices.Equal(got, w) {
				t.Errorf("catch_up: %s fired %v, want %v", name, got, w)
			}
		}
		f.advance(time.Second) // 10:00:08: each fires its tick, once
		recs = f.records(p)
		for name, w := range want {
			w = append(w, secondsAfter(t0, 8)...)
			if got := times(t, recs, p+"/"+name); !slices.Equal(got, w) {
				t.Errorf("after the restart %s fired %v, want %v", name, got, w)
			}
		}
		for _, r := range recs {
			if !strings.Contains(r.payload, `"scheduled_time":"`+r.scheduled+`"`) {
				t.Errorf("record of %s at %s has payload %s", r.schedule, r.scheduled, r.payload)
			}
		}
	})
}

func TestDST_Europe_Berlin_2026_fires_once_a_day(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		start time.Time
		want  map[string][]string
	}{
		{"spring forward 2026-03-29", time.Date(2026, 3, 27, 12, 0, 0, 0, berlin), map[string][]string{
			// 02:00-03:00 does not exist on the 29th: both fire when it ends.
			"two":       {"2026-03-28T02:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00", "2026-03-31T02:00:00+02:00"},
			"half-past": {"2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00", "2026-03-31T02:30:00+02:00"},
		}},
		{"fall back 2026-10-25", time.Date(2026, 10, 23, 12, 0, 0, 0, berlin), map[string][]string{
			// 02:00-03:00 happens twice on the 25th: they fire the first time.
			"two":       {"2026-10-24T02:00:00+02:00", "2026-10-25T02:00:00+02:00", "2026-10-26T02:00:00+01:00", "2026-10-27T02:00:00+01:00"},
			"half-past": {"2026-10-24T02:30:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00", "2026-10-27T02:30:00+01:00"},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
				p := "dst-" + testkit.Unique()
				f := newFixture(t, b, fmt.Sprintf(`
version: 1
pipelines:
  - name: %[1]s
    input: %[1]s
    partitions: 1
    schedules:
      - {name: two, cron: "0 2 * * *", timezone: Europe/Berlin, overlap: allow}
      - {name: half-past, cron: "30 2 * * *", timezone: Europe/Berlin, overlap: allow}
    stages:
      - {name: pass, filter: jq, config: {program: .}}
`, p), c.start)
				f.start()
				for range 4 * 24 * 4 { // four days, a quarter of an hour at a time
					f.advance(15 * time.Minute)
				}
				recs := f.records(p)
				for name, w := range c.want {
					if got := times(t, recs, p+"/"+name); !slices.Equal(got, w) {
						t.Errorf("%s fired\n%v\nwant\n%v", name, got, w)
					}
				}
			})
		})
	}
}

// holds is the jobs the test-hold filter holds, by pipeline: each record
// waits until its pipeline's channel is closed.
var holds sync.Map // pipeline → *hold

type hold struct {
	release chan struct{}
	mu      sync.Mutex
	running int
	most    int // the most records held at once
}

func init() {
	filters.MustRegister(filters.Spec{
		Name:    "test-hold",
		Summary: "Holds each record until the test releases its pipeline's records.",
		New: func(cfg filters.Config) (filters.Filter, error) {
			v, _ := holds.LoadOrStore(cfg.Pipeline, &hold{release: make(chan struct{})})
			h := v.(*hold)
			return filters.Func(func(ctx context.Context, m *filters.Message) ([]*filters.Message, error) {
				h.mu.Lock()
				h.running++
				h.most = max(h.most, h.running)
				h.mu.Unlock()
				defer func() { h.mu.Lock(); h.running--; h.mu.Unlock() }()
				select {
				case <-h.release:
					return []*filters.Message{m}, nil
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}), nil
		},
	})
}

func TestOverlap_a_job_3_ticks_long(t *testing.T) {
	for _, overlap := range []string{"skip", "allow"} {
		t.Run(overlap, func(t *testing.T) {
			testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
				p := "overlap-" + testkit.Unique()
				f := newFixture(t, b, fmt.Sprintf(`
version: 1
pipelines:
  - name: %[1]s
    input: %[1]s
    partitions: 4
    results: {}
    schedules:
      - {name: tick, every: 1s, overlap: %[2]s}
    stages:
      - {name: hold, filter: test-hold, concurrency: 8}
`, p, overlap), time.Date(2026, 11, 30, 10, 0, 0, 500e6, time.UTC))
				t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
				v, _ := holds.LoadOrStore(p, &hold{release: make(chan struct{})})
				h := v.(*hold)
				f.start()
				f.advance(time.Second) // tick 1: its job runs until released
				waitFor(t, "the first job to reach its stage", func() bool { h.mu.Lock(); defer h.mu.Unlock(); return h.running == 1 })
				f.advance(time.Second) // tick 2
				f.advance(time.Second) // tick 3
				recs := f.records(p)
				want := secondsAfter(t0, 1)
				if overlap == "allow" {
					want = secondsAfter(t0, 1, 2, 3)
				}
				if got := times(t, recs, p+"/tick"); !slices.Equal(got, want) {
					t.Fatalf("overlap: %s: while the first job ran it fired %v, want %v", overlap, got, want)
				}
				close(h.release)
				waitJobsFinished(t, b, f.plan, p, recs)
				f.advance(time.Second) // tick 4: the previous job finished, so it fires
				got := times(t, f.records(p), p+"/tick")
				want = append(want, secondsAfter(t0, 4)...)
				if !slices.Equal(got, want) {
					t.Errorf("overlap: %s: fired %v, want %v", overlap, got, want)
				}
				h.mu.Lock()
				most := h.most
				h.mu.Unlock()
				if overlap == "skip" && most != 1 || overlap == "allow" && most < 2 {
					t.Errorf("overlap: %s: at most %d jobs ran at once", overlap, most)
				}
			})
		})
	}
}

// waitJobsFinished waits until the jobs of recs finished.
func waitJobsFinished(t *testing.T, b testkit.Backend, plan *pipeline.Plan, p string, recs []fired) {
	t.Helper()
	pp, _ := plan.Pipeline(p)
	for _, r := range recs {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		found, err := jobsFind(ctx, b, pp, r.job)
		cancel()
		if err != nil || !found {
			t.Fatalf("job %s did not finish: %v", r.job, err)
		}
	}
}

// waitFor waits up to a minute for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestState_records_each_tick_pending_then_fired(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		p := "state-" + testkit.Unique()
		f := newFixture(t, b, fmt.Sprintf(`
version: 1
pipelines:
  - name: %[1]s
    input: %[1]s
    schedules:
      - {name: tick, every: 1m, overlap: allow, payload: '{at: $scheduled_time, n: 1}', key: '"k"'}
    stages:
      - {name: pass, filter: jq, config: {program: .}}
`, p), time.Date(2026, 11, 30, 10, 0, 30, 0, time.UTC))
		f.start()
		f.advance(time.Minute)
		client, err := sarama.NewClient(b.Brokers, transport.NewSaramaConfig("test"))
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		var seq []string
		end, _ := kafkaops.GetOffset(context.Background(), client, f.plan.Scheduler.Topic, 0, sarama.OffsetNewest)
		err = kafkaops.FetchRange(context.Background(), client, f.plan.Scheduler.Topic, 0, 0, end, func(m *sarama.ConsumerMessage) {
			var st scheduler.State
			if err := json.Unmarshal(m.Value, &st); err != nil {
				t.Errorf("state %s: %v", m.Value, err)
			}
			if string(m.Key) == "leader" {
				seq = append(seq, "leader "+st.State)
				return
			}
			seq = append(seq, string(m.Key)+" "+st.Tick.Format(time.RFC3339)+" "+st.State)
		})
		if err != nil {
			t.Fatal(err)
		}
		id := p + "/tick"
		want := []string{"leader leader", id + " 2026-11-30T10:01:00Z pending", id + " 2026-11-30T10:01:00Z fired"}
		if !slices.Equal(seq, want) {
			t.Errorf("schedule topic holds\n%v\nwant\n%v", seq, want)
		}
		recs := f.records(p)
		if len(recs) != 1 || recs[0].payload != `{"at":"2026-11-30T10:01:00Z","n":1}` {
			t.Errorf("records %+v", recs)
		}
		sp, _ := f.plan.Schedule(id)
		if recs[0].job != scheduler.TickJobID(sp, time.Date(2026, 11, 30, 10, 1, 0, 0, time.UTC)) {
			t.Errorf("job id %s is not the tick's", recs[0].job)
		}
	})
}

// jobsFind waits until job id of pipeline pp finished, and reports
// whether it did.
func jobsFind(ctx context.Context, b testkit.Backend, pp *pipeline.PipelinePlan, id string) (bool, error) {
	src := jobs.Source{Shape: *jobs.ShapeOf(*pp), Topic: pp.Results.EventsTopic, Keep: pp.Results.Keep}
	f, err := jobs.Find(ctx, jobs.FindOptions{Cluster: kafkaops.Cluster{Brokers: b.Brokers}, Sources: []jobs.Source{src},
		Job: id, Wait: 50 * time.Second})
	return f.Status.State.Finished(), err
}

// TestTakeover_settles_a_tick_a_killed_leader_left_pending plays a leader
// killed in the middle of a fire: after it recorded the tick pending, and
// before or after the tick's record went out. The next leader sends the
// record only if it is not there: one record for the tick either way.
func TestTakeover_settles_a_tick_a_killed_leader_left_pending(t *testing.T) {
	for _, sent := range []bool{false, true} {
		t.Run(fmt.Sprintf("record sent %v", sent), func(t *testing.T) {
			testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
				p := "settle-" + testkit.Unique()
				tick := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
				f := newFixture(t, b, fmt.Sprintf(`
version: 1
pipelines:
  - name: %[1]s
    input: %[1]s
    partitions: 4
    schedules:
      - {name: tick, every: 1m, overlap: allow}
    stages:
      - {name: pass, filter: jq, config: {program: .}}
`, p), tick.Add(30*time.Second))
				client, err := sarama.NewClient(b.Brokers, transport.NewSaramaConfig("test"))
				if err != nil {
					t.Fatal(err)
				}
				defer client.Close()
				if err := kafkaops.EnsureTopics(client, f.plan.Topics(), -1, slog.New(slog.DiscardHandler)); err != nil {
					t.Fatal(err)
				}
				pub, err := transport.NewPublisher(b.Brokers, transport.NewProducerConfig("test"))
				if err != nil {
					t.Fatal(err)
				}
				defer pub.Close()
				sp, _ := f.plan.Schedule(p + "/tick")
				id := scheduler.TickJobID(sp, tick)
				rec, err := scheduler.Record(sp, p, 4, id, tick)
				if err != nil {
					t.Fatal(err)
				}
				part := transport.PinnedPartition(rec.Key)
				end, err := kafkaops.GetOffset(context.Background(), client, p, part, sarama.OffsetNewest)
				if err != nil {
					t.Fatal(err)
				}
				pending, _ := json.Marshal(scheduler.State{Tick: tick, State: scheduler.StatePending, Job: id, Partition: part, Offset: end})
				if err := pub.Send(f.plan.Scheduler.Topic, []*sarama.ProducerMessage{{Topic: f.plan.Scheduler.Topic,
					Key: sarama.StringEncoder(sp.ID()), Value: sarama.ByteEncoder(pending)}}); err != nil {
					t.Fatal(err)
				}
				if sent {
					if err := pub.Send(p, []*sarama.ProducerMessage{rec}); err != nil {
						t.Fatal(err)
					}
				}
				f.start()
				if got, want := times(t, f.records(p), sp.ID()), []string{"2026-11-30T10:00:00Z"}; !slices.Equal(got, want) {
					t.Errorf("after the takeover the tick's records are %v, want %v", got, want)
				}
				states, err := scheduler.ReadStates(context.Background(), client, f.plan.Scheduler.Topic)
				if err != nil {
					t.Fatal(err)
				}
				if st := states[sp.ID()]; st.State != scheduler.StateFired || !st.Tick.Equal(tick) || st.Job != id {
					t.Errorf("state %+v", st)
				}
				f.advance(time.Minute) // the next tick fires as ever
				if got := times(t, f.records(p), sp.ID()); len(got) != 2 {
					t.Errorf("ticks %v", got)
				}
			})
		})
	}
}

func TestProgram_that_fails_for_one_tick_skips_that_tick_only(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		p := "program-" + testkit.Unique()
		f := newFixture(t, b, fmt.Sprintf(`
version: 1
pipelines:
  - name: %[1]s
    input: %[1]s
    schedules:
      - name: tick
        every: 1s
        overlap: allow
        payload: 'if ($scheduled_time | endswith(":02Z")) then error("no report at :02") else {at: $scheduled_time} end'
    stages:
      - {name: pass, filter: jq, config: {program: .}}
`, p), time.Date(2026, 11, 30, 10, 0, 0, 500e6, time.UTC))
		f.start()
		for range 3 {
			f.advance(time.Second)
		}
		t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
		if got, want := times(t, f.records(p), p+"/tick"), secondsAfter(t0, 1, 3); !slices.Equal(got, want) {
			t.Errorf("fired %v, want %v", got, want)
		}
	})
}

func TestDisabled_schedule_enabled_again_starts_at_its_next_tick(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		p := "disabled-" + testkit.Unique()
		yaml := func(enabled bool) string {
			return fmt.Sprintf(`
version: 1
pipelines:
  - name: %[1]s
    input: %[1]s
    schedules:
      - {name: on, every: 1m, overlap: allow}
      - {name: sometimes, every: 1s, overlap: allow, catch_up: all, max_catch_up: 100, enabled: %[2]v}
    stages:
      - {name: pass, filter: jq, config: {program: .}}
`, p, enabled)
		}
		t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
		f := newFixture(t, b, yaml(true), t0.Add(500*time.Millisecond))
		f.start()
		f.advance(time.Second) // sometimes fires :01
		f.stop()
		disabled := newFixture(t, b, yaml(false), time.Time{})
		disabled.plan.Scheduler, disabled.clock = f.plan.Scheduler, f.clock
		disabled.clock.Advance(10 * time.Second) // 10:00:11.5
		disabled.start()
		disabled.advance(10 * time.Second) // 10:00:21.5: nothing fires
		disabled.stop()
		again := newFixture(t, b, yaml(true), time.Time{})
		again.plan.Scheduler, again.clock = f.plan.Scheduler, f.clock
		again.clock.Advance(10 * time.Second) // 10:00:31.5
		again.start()
		again.advance(time.Second) // :32
		if got, want := times(t, again.records(p), p+"/sometimes"), secondsAfter(t0, 1, 32); !slices.Equal(got, want) {
			t.Errorf("fired %v, want %v: the ticks passed while it was disabled are not caught up", got, want)
		}
	})
}
