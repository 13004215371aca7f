package main_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/internal/scheduler"
	"github.com/millrace/millrace/testkit"
)

// scheduleFile is a pipelines file with one pipeline fired every second,
// in a scheduler group and topic of its own (tests share a broker), with
// the shortest session timeout brokers allow by default (6 s,
// group.min.session.timeout.ms).
func scheduleFile(u string) string {
	return fmt.Sprintf(`version: 1
scheduler: {group: sched-%[1]s, topic: sched-%[1]s.schedules}
defaults: {session_timeout: 6s}
pipelines:
  - name: tick-%[1]s
    input: tick-%[1]s
    partitions: 3
    schedules:
      - {name: every-second, every: 1s, overlap: allow}
      - {name: nightly, cron: "0 2 * * *", timezone: Europe/Berlin, overlap: allow}
    stages:
      - {name: pass, filter: jq, config: {program: .}}
`, u)
}

// leading and notLeading are the log lines of a process that became the
// leader and that stopped leading.
const (
	leading    = "this process leads"
	notLeading = "no longer leading"
)

// exited reports whether p's process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func TestSchedules_three_run_processes_fire_each_tick_once_while_the_leader_is_killed_twice(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		dir, u := t.TempDir(), testkit.Unique()
		writeFile(t, dir, "pipelines.yaml", scheduleFile(u))
		brokers := strings.Join(b.Brokers, ",")
		began := time.Now()
		var procs []*proc
		for i := range 3 {
			procs = append(procs, start(t, fmt.Sprintf("run %d", i+1), dir, nil, "run", "--brokers", brokers))
		}
		// leader waits until a running process leads that had not logged
		// so as often in before, and returns it.
		leader := func(before map[*proc]int) (*proc, time.Time) {
			t.Helper()
			deadline := time.Now().Add(time.Minute)
			for time.Now().Before(deadline) {
				for _, p := range procs {
					if log := p.logText(); !p.exited() && strings.Count(log, leading) > before[p] &&
						strings.LastIndex(log, leading) > strings.LastIndex(log, notLeading) {
						return p, time.Now()
					}
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Fatal("no process took the lead within a minute")
			return nil, time.Time{}
		}
		counts := func() map[*proc]int {
			m := map[*proc]int{}
			for _, p := range procs {
				m[p] = strings.Count(p.logText(), leading)
			}
			return m
		}
		first, _ := leader(nil)
		time.Sleep(8 * time.Second) // let it fire for a while (the test is about time: it runs 30 s)
		var failovers []time.Duration
		victim := first
		for range 2 {
			before, killed := counts(), time.Now()
			_ = victim.cmd.Process.Kill() // SIGKILL
			<-victim.done
			next, at := leader(before)
			failovers = append(failovers, at.Sub(killed))
			t.Logf("%s was killed; %s leads %s later", victim.name, next.name, at.Sub(killed).Round(time.Millisecond))
			victim = next
			if rest := 30*time.Second - time.Since(began); rest > 0 && len(failovers) == 1 {
				time.Sleep(min(rest/2, 5*time.Second))
			}
		}
		if rest := 30*time.Second - time.Since(began); rest > 0 {
			time.Sleep(rest)
		}
		victim.stop(time.Minute)
		ran := time.Since(began)

		ticks := scheduledTicks(t, b, "tick-"+u)
		var ts []time.Time
		for _, tk := range ticks {
			if tk.schedule != "tick-"+u+"/every-second" {
				t.Errorf("record of schedule %q fired", tk.schedule)
				continue
			}
			at, err := time.Parse(time.RFC3339, tk.scheduled)
			if err != nil {
				t.Fatal(err)
			}
			if slices.ContainsFunc(ts, at.Equal) {
				t.Errorf("tick %s fired twice", tk.scheduled)
			}
			ts = append(ts, at)
		}
		slices.SortFunc(ts, time.Time.Compare)
		if len(ts) < 2 {
			t.Fatalf("%d ticks fired in %s", len(ts), ran)
		}
		gap := time.Duration(0)
		for i := 1; i < len(ts); i++ {
			gap = max(gap, ts[i].Sub(ts[i-1]))
		}
		t.Logf("%s: %d ticks fired in %s (%s to %s), none twice; failovers %v; longest gap between ticks %s",
			b.Name, len(ts), ran.Round(time.Second), ts[0].Format(time.TimeOnly), ts[len(ts)-1].Format(time.TimeOnly), failovers, gap)
		if gap >= 10*time.Second {
			t.Errorf("the longest gap between fired ticks is %s, want under 10s", gap)
		}
		for _, f := range failovers {
			if gap > f+2*time.Second {
				t.Errorf("a gap of %s is longer than a tick and the failover (%v)", gap, failovers)
			}
		}
		// With catch_up: latest (the default) the ticks of a failover are
		// passed over but the last: every other second has its tick.
		if missing := int(ts[len(ts)-1].Sub(ts[0])/time.Second) + 1 - len(ts); missing > int((failovers[0]+failovers[1])/time.Second)+2 {
			t.Errorf("%d ticks missing, more than the failovers %v explain", missing, failovers)
		}
	})
}

// tick is a record a schedule fired.
type tick struct{ schedule, scheduled, job string }

// scheduledTicks reads every record of topic.
func scheduledTicks(t *testing.T, b testkit.Backend, topic string) []tick {
	t.Helper()
	var out []tick
	for _, r := range b.ReadAll(t, topic) {
		out = append(out, tick{r.Headers[filters.HeaderSchedule], r.Headers[filters.HeaderScheduledTime], r.Headers[filters.HeaderJob]})
	}
	return out
}

func TestSchedules_ls_shows_next_fire_times_last_tick_and_leader_and_trigger_fires_now(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		dir, u := t.TempDir(), testkit.Unique()
		writeFile(t, dir, "pipelines.yaml", scheduleFile(u))
		brokers := strings.Join(b.Brokers, ",")
		run := start(t, "run", dir, nil, "run", "--brokers", brokers)
		run.waitLog(leading, 1, time.Minute)
		run.waitLog(`msg=fired`, 1, time.Minute)

		out, stderr, code := cli(t, dir, "", "schedules", "ls", "--json", "--brokers", brokers)
		if code != 0 {
			t.Fatalf("schedules ls: exit %d: %s", code, stderr)
		}
		var l scheduler.Listing
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		if len(l.Schedules) != 2 || l.Leader == nil || !strings.HasSuffix(l.Leader.Process, fmt.Sprintf("/%d", run.cmd.Process.Pid)) ||
			l.Members != 1 {
			t.Fatalf("listing %s", out)
		}
		// The next 3 fire times are the library's: robfig/cron's, and
		// multiples of the interval.
		nightly := l.Schedules[1]
		spec, err := cron.ParseStandard("CRON_TZ=Europe/Berlin 0 2 * * *")
		if err != nil {
			t.Fatal(err)
		}
		want := spec.Next(nightly.Next[0].Add(-time.Second))
		for i, got := range nightly.Next {
			if !got.Equal(want) || got.Format(time.RFC3339)[19:] != want.Format(time.RFC3339)[19:] {
				t.Errorf("nightly's next fire %d is %s, want %s", i+1, got.Format(time.RFC3339), want.Format(time.RFC3339))
			}
			want = spec.Next(want)
		}
		if len(nightly.Next) != 3 || nightly.Timing != "cron 0 2 * * * (Europe/Berlin)" || nightly.Last != nil {
			t.Errorf("nightly: %+v", nightly)
		}
		every := l.Schedules[0]
		if every.Last == nil || every.Last.State != scheduler.StateFired || every.Last.Job == "" || len(every.Next) != 3 {
			t.Fatalf("every-second: %+v", every)
		}
		for i, n := range every.Next {
			if n.Nanosecond() != 0 || i > 0 && n.Sub(every.Next[i-1]) != time.Second {
				t.Errorf("every-second's next fire times %v are not whole seconds apart", every.Next)
			}
		}

		text, _, code := cli(t, dir, "", "schedules", "ls", "--brokers", brokers)
		for _, w := range []string{"tick-" + u + "/nightly", "cron 0 2 * * * (Europe/Berlin)", "never fired", "every 1s",
			"fired, job ", fmt.Sprintf("/%d (client ", run.cmd.Process.Pid), "1 process in group sched-" + u} {
			if code != 0 || !strings.Contains(text, w) {
				t.Errorf("schedules ls (exit %d) lacks %q:\n%s", code, w, text)
			}
		}

		// Another file whose processes would share the group: its schedule
		// is not the leader's file's, and ls says so.
		other := strings.Replace(scheduleFile(u), "name: nightly,", "name: weekly,", 1)
		writeFile(t, dir, "other.yaml", other)
		text, _, _ = cli(t, dir, "", "schedules", "ls", "-f", "other.yaml", "--brokers", brokers)
		if !strings.Contains(text, "warning: the leader's pipelines file does not have tick-"+u+"/weekly") {
			t.Errorf("schedules ls of a file the leader does not run:\n%s", text)
		}

		out, stderr, code = cli(t, dir, "", "schedules", "trigger", "tick-"+u+"/nightly", "--brokers", brokers)
		id := strings.TrimSpace(out)
		if code != 0 || len(id) != 36 {
			t.Fatalf("schedules trigger: exit %d, %q, %s", code, out, stderr)
		}
		found := false
		for _, tk := range scheduledTicks(t, b, "tick-"+u) {
			found = found || tk.job == id && tk.schedule == "tick-"+u+"/nightly"
		}
		if !found {
			t.Errorf("no record of job %s", id)
		}
		_, stderr, code = cli(t, dir, "", "schedules", "trigger", "tick-"+u+"/weekly", "--brokers", brokers)
		if code != 2 || !strings.Contains(stderr, `no schedule "tick-`+u+`/weekly" (schedules: tick-`+u+`/every-second, tick-`+u+`/nightly)`) {
			t.Errorf("trigger of an unknown schedule: exit %d: %s", code, stderr)
		}
		run.stop(time.Minute)
		text, _, _ = cli(t, dir, "", "schedules", "ls", "--brokers", brokers)
		if !strings.Contains(text, "leader: none: no 'millrace run' or 'millrace scheduler' process is in group sched-"+u) {
			t.Errorf("schedules ls with no process running:\n%s", text)
		}
	})
}

// TestSchedules_a_leader_stopped_past_its_session_fires_no_tick_twice
// stops the leader (SIGSTOP) for longer than its session: the other
// process takes the lead and fires; the stopped one, resumed (SIGCONT),
// has ticks due at once and still thinks it leads until it hears from
// the coordinator. The fence (the schedule topic's end moved) keeps it
// from firing them again.
func TestSchedules_a_leader_stopped_past_its_session_fires_no_tick_twice(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		dir, u := t.TempDir(), testkit.Unique()
		writeFile(t, dir, "pipelines.yaml", scheduleFile(u))
		brokers := strings.Join(b.Brokers, ",")
		one := start(t, "run 1", dir, nil, "run", "--brokers", brokers)
		one.waitLog(leading, 1, time.Minute)
		two := start(t, "run 2", dir, nil, "run", "--brokers", brokers)
		two.waitLog("stage ready", 1, time.Minute)
		one.waitLog("msg=fired", 3, time.Minute)
		if err := one.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		two.waitLog(leading, 1, time.Minute)
		two.waitLog("msg=fired", 3, time.Minute)
		if err := one.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		one.waitLog(notLeading, 1, time.Minute)
		two.waitLog("msg=fired", 6, time.Minute)
		one.stop(time.Minute)
		two.stop(time.Minute)
		seen := map[string]bool{}
		for _, tk := range scheduledTicks(t, b, "tick-"+u) {
			if seen[tk.scheduled] {
				t.Errorf("tick %s fired twice", tk.scheduled)
			}
			seen[tk.scheduled] = true
		}
		t.Logf("%s: %d distinct ticks; the resumed leader was fenced: %v", b.Name, len(seen),
			strings.Contains(one.logText(), "a leader of a newer generation"))
	})
}

// TestScheduler_alone_fires_and_run_no_schedules_does_not: `millrace
// scheduler` fires the schedules without a stage; a `run --no-schedules`
// beside it never leads; SIGTERM stops the scheduler with exit 0.
func TestScheduler_alone_fires_and_run_no_schedules_does_not(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		dir, u := t.TempDir(), testkit.Unique()
		writeFile(t, dir, "pipelines.yaml", scheduleFile(u))
		brokers := strings.Join(b.Brokers, ",")
		stages := start(t, "run --no-schedules", dir, nil, "run", "--brokers", brokers, "--no-schedules")
		stages.waitLog("stage ready", 1, time.Minute)
		sched := start(t, "scheduler", dir, nil, "scheduler", "--brokers", brokers)
		sched.waitLog("running the scheduler only", 1, time.Minute)
		sched.waitLog("msg=fired", 2, time.Minute)
		sched.stop(time.Minute)
		stages.stop(time.Minute)
		if strings.Contains(stages.logText(), leading) || strings.Contains(stages.logText(), "component=scheduler") {
			t.Errorf("run --no-schedules took part in the scheduler:\n%s", stages.logText())
		}
		if n := len(scheduledTicks(t, b, "tick-"+u)); n < 2 {
			t.Errorf("%d ticks in the input, want at least the 2 the scheduler logged", n)
		}
	})
}
