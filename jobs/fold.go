package jobs

import (
	"cmp"
	"encoding/json"
	"slices"
	"time"
)

// State is where a job is.
type State string

// The states of a job (docs/jobs.md, "The fold").
const (
	// StateUnknown: no event of the job was seen (or it was forgotten).
	StateUnknown State = "unknown"
	// StateAccepted: produced; no stage has settled a record of it yet.
	StateAccepted State = "accepted"
	// StateRunning: some of its records are still on their way.
	StateRunning State = "running"
	// StateSucceeded: finished, none of its records quarantined.
	StateSucceeded State = "succeeded"
	// StateFailed: finished, at least one record quarantined.
	StateFailed State = "failed"
)

// Finished reports whether s is a final state (succeeded or failed).
func (s State) Finished() bool { return s == StateSucceeded || s == StateFailed }

// Shape is what the fold must know of a job's pipeline.
type Shape struct {
	Pipeline string
	// Stages are the pipeline's stage names, in order.
	Stages []string
	// Output says the last stage writes an output topic.
	Output bool
}

// Counts are what became of a job's records.
type Counts struct {
	// Outputs is how many records reached the pipeline's end: the last
	// stage's outputs when the pipeline has an output topic, else the
	// records the last stage processed.
	Outputs int `json:"outputs"`
	// Dropped is how many records a filter returned nothing for (but at a
	// last stage without an output topic, where that is the norm).
	Dropped int `json:"dropped"`
	// Quarantined is how many records failed for good.
	Quarantined int `json:"quarantined"`
	// Skipped is how many records a deduplicating stage skipped.
	Skipped int `json:"skipped"`
}

// Failure is one quarantined record of a job.
type Failure struct {
	Stage string `json:"stage"`
	Error string `json:"error"`
	// Origin is "topic/partition/offset" of the record that failed.
	Origin string    `json:"origin,omitempty"`
	At     time.Time `json:"at"`
}

// Status is a job's status: the document `millrace jobs status --json`
// prints, replies carry and callbacks post.
type Status struct {
	Job      string `json:"job"`
	Pipeline string `json:"pipeline"`
	State    State  `json:"status"`
	Counts   Counts `json:"counts"`
	// Errors are the quarantined records, oldest first.
	Errors []Failure `json:"errors,omitempty"`
	// Waiting counts, per stage, the job's records a stage has not
	// settled yet (running and accepted jobs only).
	Waiting map[string]int `json:"waiting,omitempty"`
	// CorrelationID and ReplyTo are from the record that started the job.
	CorrelationID string `json:"correlation_id,omitempty"`
	ReplyTo       string `json:"reply_to,omitempty"`
	// Started is the first event's time; Updated the last one's;
	// Finished when the job finished (zero before).
	Started  time.Time  `json:"started"`
	Updated  time.Time  `json:"updated"`
	Finished *time.Time `json:"finished,omitempty"`
	// Results locate the job's outputs on the pipeline's output topic.
	Results []Location `json:"results,omitempty"`
	// Outputs are the outputs themselves, in replies and callbacks, when
	// their total size is at most results.reply_max_bytes.
	Outputs []Output `json:"outputs,omitempty"`
}

// Output is one output record of a job, inline: its value as JSON when
// it is JSON, else base64 (RFC 4648) in ValueBase64.
type Output struct {
	Location
	Key         string          `json:"key,omitempty"`
	Value       json.RawMessage `json:"value,omitempty"`
	ValueBase64 []byte          `json:"value_base64,omitempty"`
}

// NewOutput is the output at l with key and value.
func NewOutput(l Location, key, value []byte) Output {
	o := Output{Location: l, Key: string(key)}
	if json.Valid(value) {
		o.Value = value
	} else {
		o.ValueBase64 = value
	}
	return o
}

// size is the output's size in bytes: key and value.
func (o Output) size() int { return len(o.Key) + len(o.Value) + len(o.ValueBase64) }

// node names a record of a job: the stage that settles it (1-based) and
// its lineage.
type node struct {
	n       int
	lineage string
}

// Job folds the events of one job into its [Status]. The fold is
// idempotent: per node, the event with the most replays wins, then a
// quarantine, then the first one added — so it is independent of the
// events' order but for two different non-quarantine events of one record
// (a filter that is not deterministic, run twice): readers of one
// partition see the same order and agree. A Job is not safe for concurrent
// use.
type Job struct {
	id       string
	shape    *Shape
	events   map[node]Event
	accepted *Event
	first    time.Time
	last     time.Time
	// waiting are the expected nodes without an event, kept as events
	// come so that Finished costs nothing.
	waiting map[node]struct{}
}

// NewJob starts the fold of job id of a pipeline of the given shape.
func NewJob(id string, shape *Shape) *Job {
	return &Job{id: id, shape: shape, events: map[node]Event{}, waiting: map[node]struct{}{{1, ""}: {}}}
}

// Finished reports whether every record of the job is settled: its
// status is succeeded or failed.
func (j *Job) Finished() bool { return len(j.waiting) == 0 }

// expect notes that node k is expected: waiting for its event, or, when
// it has one, its children are expected in turn.
func (j *Job) expect(k node) {
	e, ok := j.events[k]
	if !ok {
		j.waiting[k] = struct{}{}
		return
	}
	if e.Outcome == Done && k.n < len(j.shape.Stages) {
		for i := range e.Outputs {
			j.expect(node{k.n + 1, ChildLineage(k.lineage, i)})
		}
	}
}

// ID is the job's id.
func (j *Job) ID() string { return j.id }

// Add folds e in and reports whether it changed the job's status (false
// for a duplicate or superseded event).
func (j *Job) Add(e Event) bool {
	if e.Outcome == Accepted {
		if j.accepted != nil {
			return false
		}
		j.accepted = &e
		j.times(e.At)
		return true
	}
	k := node{e.N, e.Lineage}
	prev, replaced := j.events[k]
	if replaced && !supersedes(e, prev) {
		return false
	}
	j.events[k] = e
	j.times(e.At)
	switch _, expected := j.waiting[k]; {
	case replaced:
		// A record replayed from the quarantine: what is expected may
		// change below it; walk again from the root.
		clear(j.waiting)
		j.expect(node{1, ""})
	case expected:
		delete(j.waiting, k)
		j.expect(k)
	}
	return true
}

// supersedes reports whether e, an event of the same record as prev,
// replaces it: it has more replays (the record was replayed from the
// quarantine), or as many and it is a quarantine where prev is not. The
// record is in the quarantine then, whatever else was said of it: a stage
// that crashed after quarantining it (before committing) and then did it
// at the next try, or one whose event went out in a batch whose outputs
// the broker refused for good.
func supersedes(e, prev Event) bool {
	if e.Replays != prev.Replays {
		return e.Replays > prev.Replays
	}
	return e.Outcome == Quarantined && prev.Outcome != Quarantined
}

// times moves the job's first and last times to take in t.
func (j *Job) times(t time.Time) {
	if j.first.IsZero() || t.Before(j.first) {
		j.first = t
	}
	if t.After(j.last) {
		j.last = t
	}
}

// Rooted reports whether the job's first record's event was folded: a
// job without it is either young (its first stage's event is on its way)
// or only late copies of events of a job that finished long ago.
func (j *Job) Rooted() bool {
	_, ok := j.events[node{1, ""}]
	return ok
}

// Status is the job's status now.
func (j *Job) Status() Status {
	s := Status{Job: j.id, Pipeline: j.shape.Pipeline, Started: j.first, Updated: j.last}
	if j.accepted != nil {
		s.ReplyTo, s.CorrelationID = j.accepted.ReplyTo, j.accepted.CorrelationID
	}
	last := len(j.shape.Stages)
	var finished time.Time
	waiting := 0
	// Walk the expected nodes from the root: only they count, so a record
	// an earlier run of a non-deterministic filter published does not.
	queue := []node{{1, ""}}
	for len(queue) > 0 {
		k := queue[0]
		queue = queue[1:]
		e, ok := j.events[k]
		if !ok {
			waiting++
			if s.Waiting == nil {
				s.Waiting = map[string]int{}
			}
			s.Waiting[j.stageName(k.n)]++
			continue
		}
		if e.At.After(finished) {
			finished = e.At
		}
		if k.n == 1 && k.lineage == "" && (e.ReplyTo != "" || e.CorrelationID != "") {
			s.ReplyTo, s.CorrelationID = e.ReplyTo, e.CorrelationID
		}
		switch e.Outcome {
		case Quarantined:
			s.Counts.Quarantined++
			s.Errors = append(s.Errors, Failure{Stage: e.Stage, Error: e.Error, Origin: e.Origin, At: e.At})
		case Skipped:
			s.Counts.Skipped++
		case Done:
			switch {
			case k.n < last:
				if e.Outputs == 0 {
					s.Counts.Dropped++
				}
				for i := range e.Outputs {
					queue = append(queue, node{k.n + 1, ChildLineage(k.lineage, i)})
				}
			case !j.shape.Output:
				s.Counts.Outputs++
			case e.Outputs == 0:
				s.Counts.Dropped++
			default:
				s.Counts.Outputs += e.Outputs
				s.Results = append(s.Results, e.Results...)
			}
		}
	}
	slices.SortFunc(s.Errors, func(a, b Failure) int { return a.At.Compare(b.At) })
	switch {
	case waiting > 0 && len(j.events) == 0 && j.accepted != nil:
		s.State = StateAccepted
	case waiting > 0:
		s.State = StateRunning
	case s.Counts.Quarantined > 0:
		s.State = StateFailed
	default:
		s.State = StateSucceeded
	}
	if s.State.Finished() {
		f := finished
		s.Finished = &f
		s.Waiting = nil
	}
	if len(j.events) == 0 && j.accepted == nil {
		s.State = StateUnknown
		s.Waiting = nil
	}
	slices.SortFunc(s.Results, func(a, b Location) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	return s
}

// stageName is the name of stage n (1-based).
func (j *Job) stageName(n int) string {
	if n >= 1 && n <= len(j.shape.Stages) {
		return j.shape.Stages[n-1]
	}
	return "?"
}
