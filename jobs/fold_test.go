package jobs_test

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/millrace/millrace/jobs"
)

var foldT0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func ev(n int, lineage string, o jobs.Outcome, outputs int, sec int) jobs.Event {
	e := jobs.Event{Job: "j1", Stage: []string{"", "a", "b", "c"}[n], N: n, Lineage: lineage, Outcome: o, Outputs: outputs,
		At: foldT0.Add(time.Duration(sec) * time.Second)}
	if o == jobs.Quarantined {
		e.Error = "bad record at " + lineage
		e.Origin = "p.b/0/7"
	}
	return e
}

func fold(shape *jobs.Shape, es ...jobs.Event) jobs.Status {
	j := jobs.NewJob("j1", shape)
	for _, e := range es {
		j.Add(e)
	}
	return j.Status()
}

var three = &jobs.Shape{Pipeline: "p", Stages: []string{"a", "b", "c"}, Output: true}

// The acceptance example: a job fans out into 3 records at stage 1; at
// stage 2 one is dropped and one quarantined, the third goes on.
func fanOutFailing() []jobs.Event {
	return []jobs.Event{
		ev(1, "", jobs.Done, 3, 1),
		ev(2, "0", jobs.Done, 0, 2),
		ev(2, "1", jobs.Quarantined, 0, 3),
		ev(2, "2", jobs.Done, 1, 4),
		ev(3, "2.0", jobs.Done, 1, 5),
	}
}

func TestFold_fan_out_with_a_drop_and_a_quarantine_fails_with_exact_counts(t *testing.T) {
	s := fold(three, fanOutFailing()...)
	if s.State != jobs.StateFailed || s.Counts != (jobs.Counts{Outputs: 1, Dropped: 1, Quarantined: 1}) {
		t.Fatalf("status %s counts %+v, want failed {outputs 1, dropped 1, quarantined 1}", s.State, s.Counts)
	}
	if len(s.Errors) != 1 || s.Errors[0].Error != "bad record at 1" || s.Errors[0].Stage != "b" {
		t.Errorf("errors %+v, want the quarantine error of stage b", s.Errors)
	}
	if s.Finished == nil || !s.Finished.Equal(foldT0.Add(5*time.Second)) || s.Waiting != nil {
		t.Errorf("finished %v waiting %v, want the last event's time and nothing waiting", s.Finished, s.Waiting)
	}
}

func TestFold_fan_out_that_all_succeeds(t *testing.T) {
	es := []jobs.Event{ev(1, "", jobs.Done, 3, 1)}
	for i, l := range []string{"0", "1", "2"} {
		es = append(es, ev(2, l, jobs.Done, 1, 2+i), ev(3, l+".0", jobs.Done, 1, 5+i))
	}
	if s := fold(three, es...); s.State != jobs.StateSucceeded || s.Counts != (jobs.Counts{Outputs: 3}) {
		t.Fatalf("status %s counts %+v, want succeeded with outputs 3", s.State, s.Counts)
	}
}

// Redelivered records emit their event again; any order, any duplicates,
// one status.
func TestFold_is_idempotent_and_order_independent(t *testing.T) {
	want := fold(three, fanOutFailing()...)
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		es := append(fanOutFailing(), fanOutFailing()[r.IntN(5)], fanOutFailing()[r.IntN(5)])
		r.Shuffle(len(es), func(i, j int) { es[i], es[j] = es[j], es[i] })
		if got := fold(three, es...); !reflect.DeepEqual(got, want) {
			t.Fatalf("fold of %v\n= %+v\nwant %+v", es, got, want)
		}
	}
}

func TestFold_running_names_the_stages_records_wait_at(t *testing.T) {
	s := fold(three, ev(1, "", jobs.Done, 3, 1), ev(2, "0", jobs.Done, 2, 2))
	if s.State != jobs.StateRunning || !reflect.DeepEqual(s.Waiting, map[string]int{"b": 2, "c": 2}) || s.Finished != nil {
		t.Fatalf("status %s waiting %v, want running with 2 at b and 2 at c", s.State, s.Waiting)
	}
	// A child settled before its parent's event (the parent's event is
	// emitted after its outputs' acks): still running, at the parent.
	s = fold(three, ev(2, "0", jobs.Done, 0, 2))
	if s.State != jobs.StateRunning || !reflect.DeepEqual(s.Waiting, map[string]int{"a": 1}) {
		t.Fatalf("status %s waiting %v, want running, waiting at a", s.State, s.Waiting)
	}
}

func TestFold_accepted_until_a_stage_settles_a_record(t *testing.T) {
	acc := jobs.Event{Outcome: jobs.Accepted, At: foldT0, ReplyTo: "r", CorrelationID: "c1"}
	s := fold(three, acc)
	if s.State != jobs.StateAccepted || s.CorrelationID != "c1" || s.ReplyTo != "r" {
		t.Fatalf("status %+v, want accepted with the correlation id", s)
	}
	if s := fold(three, acc, ev(2, "0", jobs.Done, 1, 1)); s.State != jobs.StateRunning {
		t.Errorf("accepted, then a record of stage b before stage a's event: %s, want running", s.State)
	}
	if s := fold(three); s.State != jobs.StateUnknown {
		t.Errorf("no events: %s, want unknown", s.State)
	}
}

// A record replayed from the quarantine carries millrace-replays one
// higher: its event replaces the quarantined one and the job re-opens,
// then succeeds.
func TestFold_a_replayed_record_reopens_its_job(t *testing.T) {
	es := fanOutFailing()
	replayed := ev(2, "1", jobs.Done, 1, 10)
	replayed.Replays = 1
	s := fold(three, append(es, replayed)...)
	if s.State != jobs.StateRunning || s.Waiting["c"] != 1 {
		t.Fatalf("after the replay: %s waiting %v, want running at c", s.State, s.Waiting)
	}
	s = fold(three, append(es, replayed, ev(3, "1.0", jobs.Done, 1, 11))...)
	if s.State != jobs.StateSucceeded || s.Counts != (jobs.Counts{Outputs: 2, Dropped: 1}) || len(s.Errors) != 0 {
		t.Fatalf("replayed and done: %s %+v %v, want succeeded {outputs 2, dropped 1}", s.State, s.Counts, s.Errors)
	}
	// The quarantined event arriving late (a redelivery) does not undo it.
	if s2 := fold(three, append(append(es, replayed, ev(3, "1.0", jobs.Done, 1, 11)), ev(2, "1", jobs.Quarantined, 0, 3))...); s2.State != jobs.StateSucceeded {
		t.Errorf("a late copy of the quarantined event: %s, want succeeded", s2.State)
	}
}

// A filter that is not deterministic may publish more outputs on a first
// run whose event was lost than on the run that counted: the extra
// records' events do not count.
func TestFold_only_expected_records_count(t *testing.T) {
	s := fold(three, ev(1, "", jobs.Done, 1, 1), ev(2, "0", jobs.Done, 1, 2), ev(3, "0.0", jobs.Done, 1, 3),
		ev(2, "1", jobs.Quarantined, 0, 4))
	if s.State != jobs.StateSucceeded || s.Counts != (jobs.Counts{Outputs: 1}) {
		t.Fatalf("%s %+v, want succeeded with outputs 1", s.State, s.Counts)
	}
}

func TestFold_a_last_stage_without_an_output_topic_counts_what_reached_it(t *testing.T) {
	noOut := &jobs.Shape{Pipeline: "p", Stages: []string{"a", "b"}}
	s := fold(noOut, ev(1, "", jobs.Done, 2, 1), ev(2, "0", jobs.Done, 0, 2), ev(2, "1", jobs.Skipped, 0, 3))
	if s.State != jobs.StateSucceeded || s.Counts != (jobs.Counts{Outputs: 1, Skipped: 1}) {
		t.Fatalf("%s %+v, want succeeded {outputs 1, skipped 1}", s.State, s.Counts)
	}
	// With an output topic, a last stage that returns nothing dropped it.
	s = fold(&jobs.Shape{Stages: []string{"a"}, Output: true}, ev(1, "", jobs.Done, 0, 1))
	if s.Counts != (jobs.Counts{Dropped: 1}) {
		t.Errorf("%+v, want dropped 1", s.Counts)
	}
}

func TestEvent_round_trips_and_refuses_what_it_does_not_know(t *testing.T) {
	e := ev(3, "2.0", jobs.Done, 1, 5)
	e.Results = []jobs.Location{{Topic: "out", Partition: 2, Offset: 9}}
	got, err := jobs.ParseEvent("j1", e.Marshal())
	e.V = jobs.EventVersion
	if err != nil || !reflect.DeepEqual(got, e) {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, e)
	}
	for _, bad := range []string{`{`, `{"v":99,"outcome":"done","n":1}`, `{"v":1,"outcome":"exploded","n":1}`, `{"v":1,"outcome":"done"}`} {
		if _, err := jobs.ParseEvent("j1", []byte(bad)); err == nil {
			t.Errorf("%s: parsed, want an error", bad)
		}
	}
}

// Finished, kept as events come, agrees with the status computed from
// scratch, after every event of shuffled, duplicated, replayed streams.
func TestFold_finished_agrees_with_the_status_at_every_step(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	replayed := ev(2, "1", jobs.Done, 1, 10)
	replayed.Replays = 1
	streams := [][]jobs.Event{
		fanOutFailing(),
		append(fanOutFailing(), replayed, ev(3, "1.0", jobs.Done, 1, 11)),
		{ev(1, "", jobs.Done, 1, 1), ev(2, "0", jobs.Done, 1, 2), ev(3, "0.0", jobs.Done, 1, 3), ev(2, "1", jobs.Quarantined, 0, 4)},
	}
	for _, stream := range streams {
		for range 100 {
			es := append(slices.Clone(stream), stream[r.IntN(len(stream))])
			r.Shuffle(len(es), func(i, j int) { es[i], es[j] = es[j], es[i] })
			j := jobs.NewJob("j1", three)
			for _, e := range es {
				j.Add(e)
				if got, want := j.Finished(), j.Status().State.Finished(); got != want {
					t.Fatalf("after %+v of %v: Finished %v, status %s", e, es, got, j.Status().State)
				}
			}
		}
	}
}

// A record quarantined and also said done (its stage crashed after the
// quarantine, before committing, and the next try passed; or its outputs
// were refused after its event went out with them): failed, in any order.
func TestFold_a_quarantine_beats_another_outcome_of_the_same_record(t *testing.T) {
	done := ev(2, "1", jobs.Done, 0, 3)
	quarantined := ev(2, "1", jobs.Quarantined, 0, 3)
	for _, order := range [][]jobs.Event{{done, quarantined}, {quarantined, done}} {
		es := []jobs.Event{ev(1, "", jobs.Done, 2, 1), ev(2, "0", jobs.Done, 0, 2), order[0], order[1]}
		s := fold(&jobs.Shape{Stages: []string{"a", "b"}, Output: true}, es...)
		if s.State != jobs.StateFailed || s.Counts != (jobs.Counts{Dropped: 1, Quarantined: 1}) {
			t.Errorf("%s then %s: %s %+v, want failed {dropped 1, quarantined 1}", order[0].Outcome, order[1].Outcome, s.State, s.Counts)
		}
	}
}
