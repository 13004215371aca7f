package jobs_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/millrace/millrace/filters"
	"github.com/millrace/millrace/jobs"
	"github.com/millrace/millrace/kafkaops"
	"github.com/millrace/millrace/pipeline"
	"github.com/millrace/millrace/testkit"
	"github.com/millrace/millrace/transport"
)

// vt0 is when the jobs of these tests start: an hour ago, so that a view
// on the real clock keeps their events (within Keep), whatever the day
// the tests run (a fixed date put them past Keep a day later).
var vt0 = time.Now().UTC().Add(-time.Hour).Truncate(time.Second)

// shape2 is a two-stage pipeline with an output topic.
func shape2(name string) jobs.Shape {
	return jobs.Shape{Pipeline: name, Stages: []string{"check", "price"}, Output: true}
}

// jev is an event of job id at stage n (of shape2) at vt0 + sec seconds.
func jev(id string, n int, lineage string, o jobs.Outcome, outputs, sec int) jobs.Event {
	e := jobs.Event{Job: id, Stage: []string{"", "check", "price"}[n], N: n, Lineage: lineage, Outcome: o, Outputs: outputs,
		At: vt0.Add(time.Duration(sec) * time.Second)}
	if o == jobs.Quarantined {
		e.Error = "no price for " + id
	}
	return e
}

// succeeding is a job that fans out into 2 records, both priced.
func succeeding(id string, sec int) []jobs.Event {
	return []jobs.Event{jev(id, 1, "", jobs.Done, 2, sec), jev(id, 2, "0", jobs.Done, 1, sec+1), jev(id, 2, "1", jobs.Done, 1, sec+2)}
}

// failing is a job whose only record fails at price.
func failing(id string, sec int) []jobs.Event {
	return []jobs.Event{jev(id, 1, "", jobs.Done, 1, sec), jev(id, 2, "0", jobs.Quarantined, 0, sec+1)}
}

// records are events as records of the events topic, keyed by job id.
func records(es ...jobs.Event) []testkit.Record {
	out := make([]testkit.Record, len(es))
	for i, e := range es {
		out[i] = testkit.Record{Key: []byte(e.Job), Value: e.Marshal()}
	}
	return out
}

// foldOf is the status the fold gives es, in their order.
func foldOf(shape jobs.Shape, es ...jobs.Event) jobs.Status {
	j := jobs.NewJob(es[0].Job, &shape)
	for _, e := range es {
		j.Add(e)
	}
	return j.Status()
}

func cluster(b testkit.Backend) kafkaops.Cluster {
	return kafkaops.Cluster{Brokers: b.Brokers, ConnectTimeout: 30 * time.Second}
}

// openView opens a view of pipeline name's events on b, closed when the
// test ends.
func openView(t *testing.T, b testkit.Backend, cfg jobs.ViewConfig) *jobs.View {
	t.Helper()
	v, err := jobs.OpenView(context.Background(), cluster(b), cfg)
	if err != nil {
		t.Fatalf("OpenView: %v", err)
	}
	t.Cleanup(func() {
		if err := v.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return v
}

// newPipeline names a pipeline for one test and creates its events topic.
func newPipeline(t *testing.T, b testkit.Backend, partitions int) string {
	t.Helper()
	name := "view-" + testkit.Unique()
	b.CreateTopic(t, jobs.EventsTopic(name), partitions)
	return name
}

// Redelivered records emit their events twice, and events of one job come
// in any order; with records that are not job events between them, the
// view gives each job the one status the fold gives its events in order.
func TestView_folds_duplicate_and_out_of_order_events_into_one_status(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		name := newPipeline(t, b, 3)
		shape := shape2(name)
		ok, bad, running := succeeding("job-ok", 0), failing("job-bad", 10), succeeding("job-running", 20)[:2]
		r := rand.New(rand.NewPCG(7, 8))
		var es []jobs.Event
		for _, job := range [][]jobs.Event{ok, bad, running} {
			mixed := append(append([]jobs.Event{}, job...), job[r.IntN(len(job))], job[0])
			r.Shuffle(len(mixed), func(i, j int) { mixed[i], mixed[j] = mixed[j], mixed[i] })
			es = append(es, mixed...)
		}
		recs := records(es...)
		recs = append(recs, testkit.Record{Key: []byte("job-ok"), Value: []byte("not json")},
			testkit.Record{Key: []byte("job-bad"), Value: []byte(`{"v":99,"outcome":"done","n":1}`)},
			testkit.Record{Value: jev("", 1, "", jobs.Done, 1, 0).Marshal()})
		b.Produce(t, jobs.EventsTopic(name), recs)

		v := openView(t, b, jobs.ViewConfig{Source: jobs.Source{Shape: shape}, Now: func() time.Time { return vt0.Add(time.Hour) }})
		for _, job := range [][]jobs.Event{ok, bad, running} {
			if got, want := v.Status(job[0].Job), foldOf(shape, job...); !reflect.DeepEqual(got, want) {
				t.Errorf("%s:\n got  %+v\n want %+v", job[0].Job, got, want)
			}
		}
		if s := v.Status("job-ok"); s.State != jobs.StateSucceeded || s.Counts != (jobs.Counts{Outputs: 2}) {
			t.Errorf("job-ok: %s %+v, want succeeded with 2 outputs", s.State, s.Counts)
		}
		if s := v.Status("job-bad"); s.State != jobs.StateFailed || len(s.Errors) != 1 || s.Errors[0].Error != "no price for job-bad" {
			t.Errorf("job-bad: %s %+v, want failed with its error", s.State, s.Errors)
		}
		if s := v.Status("job-running"); s.State != jobs.StateRunning || s.Waiting["price"] != 1 {
			t.Errorf("job-running: %s waiting %v, want running with 1 at price", s.State, s.Waiting)
		}
		if s := v.Status("never"); s.State != jobs.StateUnknown || s.Job != "never" || s.Pipeline != name {
			t.Errorf("a job never seen: %+v, want unknown", s)
		}
		if n := v.Skipped(); n != 3 {
			t.Errorf("skipped %d records, want 3 (not JSON, a newer version, no key)", n)
		}

		ids := func(ss []jobs.Status) string {
			var out []string
			for _, s := range ss {
				out = append(out, s.Job)
			}
			return strings.Join(out, " ")
		}
		for _, tt := range []struct {
			f    jobs.Filter
			want string
		}{
			{jobs.Filter{}, "job-running job-bad job-ok"},
			{jobs.Filter{Limit: 2}, "job-running job-bad"},
			{jobs.Filter{State: jobs.StateFailed}, "job-bad"},
			{jobs.Filter{State: jobs.StateSucceeded}, "job-ok"},
			{jobs.Filter{Since: vt0.Add(10 * time.Second)}, "job-running job-bad"},
			{jobs.Filter{Since: vt0.Add(11 * time.Second)}, "job-running"},
			{jobs.Filter{State: jobs.StateUnknown}, ""},
		} {
			if got := ids(v.List(tt.f)); got != tt.want {
				t.Errorf("List(%+v) = %q, want %q (newest first)", tt.f, got, tt.want)
			}
		}
	})
}

// A job that finished more than Keep ago is forgotten; one that has not
// finished is not, however old.
func TestView_forgets_jobs_finished_longer_ago_than_keep(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		name := newPipeline(t, b, 2)
		old, recent, stuck := succeeding("old", 0), failing("recent", 3600), succeeding("stuck", 5)[:1]
		b.Produce(t, jobs.EventsTopic(name), records(append(append(old, recent...), stuck...)...))
		now := vt0.Add(2*time.Hour + 30*time.Minute)
		v := openView(t, b, jobs.ViewConfig{Source: jobs.Source{Shape: shape2(name), Keep: 2 * time.Hour},
			Now: func() time.Time { return now }})
		for id, want := range map[string]jobs.State{"old": jobs.StateUnknown, "recent": jobs.StateFailed, "stuck": jobs.StateRunning} {
			if s := v.Status(id); s.State != want {
				t.Errorf("%s: %s, want %s", id, s.State, want)
			}
		}
		if got := v.List(jobs.Filter{}); len(got) != 2 || got[0].Job != "recent" || got[1].Job != "stuck" {
			t.Errorf("List = %+v, want recent and stuck", got)
		}
		// The default keep is a day.
		v = openView(t, b, jobs.ViewConfig{Source: jobs.Source{Shape: shape2(name)}, Now: func() time.Time { return vt0.Add(25 * time.Hour) }})
		if s := v.Status("recent"); s.State != jobs.StateFailed {
			t.Errorf("recent, 24h after it finished: %s, want failed", s.State)
		}
		if s := v.Status("old"); s.State != jobs.StateUnknown {
			t.Errorf("old, 25h after it finished: %s, want unknown", s.State)
		}
	})
}

// otherPartition returns a partition of topic (with n partitions) that
// millrace's producers do not put records keyed id in.
func otherPartition(topic, id string, n int32) int32 {
	p, err := transport.NewMurmur2Partitioner(topic).Partition(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(id)}, n)
	if err != nil {
		panic(err)
	}
	return (p + 1) % n
}

// A view of one job reads only the partition millrace's producers put its
// events in (murmur2 of the job id): an event of the job put elsewhere by
// hand is never read.
func TestView_of_one_job_reads_only_its_partition(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		name := newPipeline(t, b, 4)
		topic := jobs.EventsTopic(name)
		b.Produce(t, topic, records(succeeding("one", 0)...))
		cfg := transport.NewProducerConfig("test")
		cfg.Producer.Partitioner = sarama.NewManualPartitioner
		p, err := sarama.NewSyncProducer(b.Brokers, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		elsewhere := otherPartition(topic, "one", 4)
		poison := jev("one", 1, "", jobs.Quarantined, 0, 9)
		poison.Replays = 1 // wins over the root's done event, read before or after it
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: elsewhere, Key: sarama.StringEncoder("one"),
			Value: sarama.ByteEncoder(poison.Marshal())}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: elsewhere, Key: sarama.StringEncoder("one"),
			Value: sarama.StringEncoder("not an event")}); err != nil {
			t.Fatal(err)
		}
		v := openView(t, b, jobs.ViewConfig{Source: jobs.Source{Shape: shape2(name)}, Jobs: []string{"one"}, Now: func() time.Time { return vt0 }})
		if s := v.Status("one"); s.State != jobs.StateSucceeded || v.Skipped() != 0 {
			t.Fatalf("one: %s, %d skipped; want succeeded with nothing skipped (partition %d never read)", s.State, v.Skipped(), elsewhere)
		}
		// The whole topic has both: the view of every job reads them.
		all := openView(t, b, jobs.ViewConfig{Source: jobs.Source{Shape: shape2(name)}, Now: func() time.Time { return vt0 }})
		if s := all.Status("one"); s.State != jobs.StateFailed || all.Skipped() != 1 {
			t.Fatalf("one in a view of all: %s, %d skipped; want failed, 1 skipped", s.State, all.Skipped())
		}
		if _, err := v.Wait(context.Background(), "other"); err == nil {
			t.Errorf("Wait for a job the view does not hold: no error")
		}
	})
}

// Wait reads on and returns when the last event of each job arrives, not
// before; it returns at once for jobs that are finished already.
func TestView_Wait_returns_when_the_last_event_of_each_job_arrives(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		name := newPipeline(t, b, 3)
		topic := jobs.EventsTopic(name)
		a, c, done := succeeding("wait-a", 0), failing("wait-c", 0), succeeding("wait-done", 0)
		b.Produce(t, topic, records(append(append([]jobs.Event{a[0]}, c[0]), done...)...))
		v := openView(t, b, jobs.ViewConfig{Source: jobs.Source{Shape: shape2(name)}, Now: func() time.Time { return vt0 }})

		if s, err := v.Wait(context.Background(), "wait-done"); err != nil || s[0].State != jobs.StateSucceeded {
			t.Fatalf("Wait for a finished job: %+v, %v", s, err)
		}
		type waited struct {
			s   []jobs.Status
			err error
		}
		ch := make(chan waited, 1)
		go func() {
			s, err := v.Wait(context.Background(), "wait-a", "wait-c")
			ch <- waited{s, err}
		}()
		// Every event but the last: the view folds them, Wait waits on.
		b.Produce(t, topic, records(a[1], a[1], c[1]))
		testkit.Eventually(t, 30*time.Second, func() bool {
			return v.Status("wait-a").Waiting["price"] == 1 && v.Status("wait-c").State == jobs.StateFailed
		}, "the view never read the events written after it opened: %+v", v.Status("wait-a"))
		select {
		case w := <-ch:
			t.Fatalf("Wait returned before wait-a's last event: %+v, %v", w.s, w.err)
		default:
		}
		b.Produce(t, topic, records(a[2]))
		select {
		case w := <-ch:
			if w.err != nil || len(w.s) != 2 || w.s[0].State != jobs.StateSucceeded || w.s[1].State != jobs.StateFailed {
				t.Fatalf("Wait = %+v, %v; want wait-a succeeded, wait-c failed", w.s, w.err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Wait did not return after the last event")
		}
	})
}

// Wait ends with its context, returning the statuses then, and with the
// view.
func TestView_Wait_ends_with_its_context_and_with_the_view(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		name := newPipeline(t, b, 2)
		b.Produce(t, jobs.EventsTopic(name), records(succeeding("slow", 0)[:2]...))
		v, err := jobs.OpenView(context.Background(), cluster(b), jobs.ViewConfig{Source: jobs.Source{Shape: shape2(name)}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		s, err := v.Wait(ctx, "slow", "never")
		if !errors.Is(err, context.DeadlineExceeded) || s[0].State != jobs.StateRunning || s[1].State != jobs.StateUnknown {
			t.Fatalf("Wait past its deadline = %+v, %v; want running and unknown, deadline exceeded", s, err)
		}
		ch := make(chan error, 1)
		go func() {
			_, err := v.Wait(context.Background(), "slow")
			ch <- err
		}()
		if err := v.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-ch:
			if err == nil {
				t.Fatal("Wait on a closed view: no error")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Wait did not return when the view closed")
		}
	})
}

// A view that follows reads on after the catch-up without a Wait.
func TestView_that_follows_reads_on(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		name := newPipeline(t, b, 2)
		v := openView(t, b, jobs.ViewConfig{Source: jobs.Source{Shape: shape2(name)}, Follow: true, Now: func() time.Time { return vt0 }})
		b.Produce(t, jobs.EventsTopic(name), records(failing("later", 0)...))
		testkit.Eventually(t, 30*time.Second, func() bool { return v.Status("later").State == jobs.StateFailed },
			"the view never read the events written after it opened")
	})
}

func TestView_of_a_pipeline_that_never_ran_is_ErrNoEvents(t *testing.T) {
	b := testkit.Embedded(t)
	_, err := jobs.OpenView(context.Background(), cluster(b), jobs.ViewConfig{Source: jobs.Source{Shape: shape2("nope-" + testkit.Unique())}})
	if !errors.Is(err, jobs.ErrNoEvents) {
		t.Fatalf("OpenView of a missing topic: %v, want ErrNoEvents", err)
	}
	if _, err := jobs.OpenView(context.Background(), cluster(b), jobs.ViewConfig{}); err == nil || !strings.Contains(err.Error(), "invalid config") {
		t.Fatalf("OpenView without a pipeline: %v, want invalid config", err)
	}
}

// Find looks in every pipeline, reports the ones that never ran, and
// waits for a job to finish, or for its deadline.
func TestFind_looks_in_every_pipeline_and_waits(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		p1, p2 := newPipeline(t, b, 2), newPipeline(t, b, 3)
		b.Produce(t, jobs.EventsTopic(p2), records(append(failing("in-p2", 0), succeeding("slow", 0)[:1]...)...))
		sources := []jobs.Source{{Shape: shape2(p1)}, {Shape: shape2("never-ran-" + testkit.Unique())}, {Shape: shape2(p2)}}
		opts := jobs.FindOptions{Cluster: cluster(b), Sources: sources, Job: "in-p2", Now: func() time.Time { return vt0 }}
		f, err := jobs.Find(context.Background(), opts)
		if err != nil || f.Status.State != jobs.StateFailed || f.Status.Pipeline != p2 || len(f.NoEvents) != 1 {
			t.Fatalf("Find in-p2 = %+v, %v; want failed in %s, one pipeline without events", f, err, p2)
		}
		opts.Job = "nowhere"
		if f, err := jobs.Find(context.Background(), opts); err != nil || f.Status.State != jobs.StateUnknown || f.Status.Pipeline != "" {
			t.Fatalf("Find nowhere = %+v, %v; want unknown", f, err)
		}
		opts.Job, opts.Wait = "slow", 300*time.Millisecond
		if f, err := jobs.Find(context.Background(), opts); err != nil || !f.TimedOut || f.Status.State != jobs.StateRunning {
			t.Fatalf("Find slow, waiting 300ms = %+v, %v; want still running, timed out", f, err)
		}
		opts.Job, opts.Wait = "late", time.Minute
		ch := make(chan jobs.Found, 1)
		go func() {
			f, err := jobs.Find(context.Background(), opts)
			if err != nil {
				t.Error(err)
			}
			ch <- f
		}()
		// Not seen anywhere yet: Find waits in every pipeline; write until it
		// has looked (events written before it opened count too).
		b.Produce(t, jobs.EventsTopic(p1), records(succeeding("late", 0)...))
		select {
		case f := <-ch:
			if f.Status.State != jobs.StateSucceeded || f.Status.Pipeline != p1 || f.TimedOut {
				t.Fatalf("Find late = %+v, want succeeded in %s", f, p1)
			}
		case <-time.After(time.Minute):
			t.Fatal("Find did not return")
		}
	})
}

func TestListJobs_lists_a_pipelines_jobs(t *testing.T) {
	b := testkit.Embedded(t)
	name := newPipeline(t, b, 2)
	b.Produce(t, jobs.EventsTopic(name), records(append(failing("f", 0), succeeding("s", 5)...)...))
	l, err := jobs.ListJobs(context.Background(), jobs.ListOptions{Cluster: cluster(b), Source: jobs.Source{Shape: shape2(name)},
		Filter: jobs.Filter{State: jobs.StateSucceeded}, Now: func() time.Time { return vt0 }})
	if err != nil || len(l.Jobs) != 1 || l.Jobs[0].Job != "s" {
		t.Fatalf("ListJobs succeeded = %+v, %v; want s", l, err)
	}
	_, err = jobs.ListJobs(context.Background(), jobs.ListOptions{Cluster: cluster(b), Source: jobs.Source{Shape: shape2("none-" + testkit.Unique())}})
	if !errors.Is(err, jobs.ErrNoEvents) {
		t.Fatalf("ListJobs of a pipeline that never ran: %v, want ErrNoEvents", err)
	}
}

// ProduceAndWait announces each job (accepted, with the reply-to and
// correlation id of its headers) before its record, and waits for the
// jobs to finish: here a stand-in stage writes their events.
func TestProduceAndWait_announces_each_job_and_waits_for_it(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		name := "pw-" + testkit.Unique()
		input, events := name+".in", pipeline.Topic{Name: jobs.EventsTopic(name), Partitions: 3}
		opts := jobs.ProduceOptions{
			ProduceOptions: kafkaops.ProduceOptions{Cluster: cluster(b), Topic: pipeline.Topic{Name: input, Partitions: 2},
				ReplicationFactor: -1, Lines: strings.NewReader("1\n2\n"),
				Headers: []kafkaops.Header{{Key: []byte(filters.HeaderReplyTo), Value: []byte("replies")},
					{Key: []byte(filters.HeaderCorrelationID), Value: []byte("c-1")}}},
			Source: jobs.Source{Shape: shape2(name)}, Events: events, Timeout: 300 * time.Millisecond,
			Now: func() time.Time { return vt0 },
		}
		// No stage runs: the wait times out, the jobs accepted.
		res, err := jobs.ProduceAndWait(context.Background(), opts)
		if err != nil || !res.TimedOut || res.Sent != 2 || len(res.Statuses) != 2 {
			t.Fatalf("ProduceAndWait without a stage = %+v, %v; want 2 sent, timed out", res, err)
		}
		v := openView(t, b, jobs.ViewConfig{Source: jobs.Source{Shape: shape2(name)}, Now: func() time.Time { return vt0 }})
		for i, id := range res.Jobs {
			if w := res.Statuses[i]; w.Job != id || w.State.Finished() {
				t.Errorf("status %+v when the wait ended, want job %s not finished", w, id)
			}
			if s := v.Status(id); s.State != jobs.StateAccepted || s.ReplyTo != "replies" || s.CorrelationID != "c-1" || !s.Started.Equal(vt0) {
				t.Errorf("status %+v, want job %s accepted at %s with reply-to and correlation id", s, id, vt0)
			}
		}

		// A stand-in stage settles each record as it reads it.
		opts.Timeout, opts.Lines = time.Minute, strings.NewReader("3\n4\n5\n")
		type produced struct {
			res jobs.ProduceResult
			err error
		}
		ch := make(chan produced, 1)
		go func() {
			res, err := jobs.ProduceAndWait(context.Background(), opts)
			ch <- produced{res, err}
		}()
		var es []jobs.Event
		for _, r := range b.Read(t, input, 5, time.Minute) {
			switch id := r.Headers[filters.HeaderJob]; string(r.Value) {
			case "4":
				es = append(es, failing(id, 0)...)
			case "3", "5":
				es = append(es, succeeding(id, 0)...)
			}
		}
		b.Produce(t, events.Name, records(es...))
		p := <-ch
		if res = p.res; p.err != nil || res.TimedOut || res.Sent != 3 {
			t.Fatalf("ProduceAndWait = %+v, %v; want 3 sent, all finished", res, p.err)
		}
		failed := 0
		for _, s := range res.Statuses {
			if !s.State.Finished() {
				t.Errorf("%s: %s, want finished", s.Job, s.State)
			}
			if s.State == jobs.StateFailed {
				failed++
			}
		}
		if failed != 1 {
			t.Errorf("%d failed, want 1 (the record 4): %+v", failed, res.Statuses)
		}
	})
}

// A view that compacts keeps a job finished longer than Compact ago as
// where its events are: Status knows its state, StatusOf reads the events
// again and gives the status the fold gives them — also after a late
// event (a replay from the quarantine) re-opened it, which takes the job
// back into memory — and Wait returns at once; past Keep the job is
// forgotten, and so is a job without an event for longer than the events
// are kept.
func TestView_that_compacts_reads_a_finished_jobs_events_again(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T, b testkit.Backend) {
		name := newPipeline(t, b, 1)
		a, bad := succeeding("a", 0), failing("b", 1)
		stuck := jobs.Event{Job: "stuck", Outcome: jobs.Accepted, At: vt0} // its record never came
		b.Produce(t, jobs.EventsTopic(name), records(a[0], bad[0], stuck, a[1], bad[1], a[2]))
		var mu sync.Mutex
		now := vt0.Add(10 * time.Second)
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		v := openView(t, b, jobs.ViewConfig{Source: jobs.Source{Shape: shape2(name), Keep: 2 * time.Hour},
			Follow: true, Compact: time.Minute, Now: clock})
		full := foldOf(shape2(name), a...)
		if s := v.Status("a"); !reflect.DeepEqual(s, full) {
			t.Fatalf("before compaction: %+v, want %+v", s, full)
		}

		mu.Lock()
		now = vt0.Add(time.Hour) // past Compact: the next event prunes
		mu.Unlock()
		b.Produce(t, jobs.EventsTopic(name), records(succeeding("c", 3000)[0]))
		testkit.Eventually(t, 30*time.Second, func() bool { return v.Status("c").State == jobs.StateRunning }, "c never read")
		if s := v.Status("a"); s.State != jobs.StateSucceeded || s.Counts.Outputs != 0 || s.Finished == nil {
			t.Errorf("Status of a compacted job: %+v, want its state and finish time only", s)
		}
		s, err := v.StatusOf(context.Background(), "a")
		if err != nil || !reflect.DeepEqual(s, full) {
			t.Fatalf("StatusOf a compacted job: %+v, %v; want %+v", s, err, full)
		}
		if got := v.List(jobs.Filter{}); len(got) != 2 || got[0].Job != "c" || got[1].Job != "stuck" {
			t.Errorf("List = %+v, want c and stuck (compacted jobs are not listed)", got)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if ws, err := v.Wait(ctx, "a"); err != nil || ws[0].State != jobs.StateSucceeded {
			t.Errorf("Wait on a compacted job: %+v, %v; want succeeded at once", ws, err)
		}

		// The quarantined record of b replayed and done: b re-opens and succeeds.
		replayed := jev("b", 2, "0", jobs.Done, 1, 3600)
		replayed.Replays = 1
		b.Produce(t, jobs.EventsTopic(name), records(replayed))
		want := foldOf(shape2(name), append(bad, replayed)...)
		testkit.Eventually(t, 30*time.Second, func() bool {
			s, err := v.StatusOf(context.Background(), "b")
			return err == nil && reflect.DeepEqual(s, want)
		}, "StatusOf b after a replay: want %+v", want)
		if s := v.Status("b"); !reflect.DeepEqual(s, want) {
			t.Errorf("a re-opened job is not back in memory: Status %+v, want %+v", s, want)
		}

		if s := v.Status("stuck"); s.State != jobs.StateAccepted {
			t.Errorf("an accepted job, an hour on: %s, want accepted", s.State)
		}
		mu.Lock()
		now = vt0.Add(3*time.Hour + time.Minute) // past Keep, and past Keep + 1h after stuck's event
		mu.Unlock()
		b.Produce(t, jobs.EventsTopic(name), records(succeeding("d", 11000)[0]))
		testkit.Eventually(t, 30*time.Second, func() bool { return v.Status("d").State == jobs.StateRunning }, "d never read")
		testkit.Eventually(t, 30*time.Second, func() bool {
			s, err := v.StatusOf(context.Background(), "a")
			return err == nil && s.State == jobs.StateUnknown
		}, "a compacted job finished longer ago than keep is not forgotten")
		if s := v.Status("stuck"); s.State != jobs.StateUnknown {
			t.Errorf("a job with no event for longer than keep + 1h (its events are gone): %s, want forgotten", s.State)
		}
	})
}
